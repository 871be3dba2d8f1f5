"""No secret value reaches a finding, a verdict, a log line or an exception message, although
the Kubernetes API answers the whole Secret (the fake does, like the real one)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.service.context import build_context
from bot.service.settings import load_settings
from commands.diagnose import run_diagnose
from integrations.kube import Kube, KubeError
from sandbox.up import Sandbox

NAMESPACE = "vault-test"
VALUE = "s3cr3t-Zm9vYmFyLXNpZ25pbmcta2V5"


def forms(value: str) -> list[str]:
    """A value as it could leak: raw, base64 (as in the Secret), and JSON-escaped."""
    return [value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]]


async def test_diagnosis_shows_key_names_only(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings, config = load_settings(sandbox.env)
    ctx = await build_context(settings, config)
    world = sandbox.live.world
    try:
        reports = [await run_diagnose(ctx, tenant, "signatures") for tenant in world.tenants]
    finally:
        await ctx.close()
    shown = "\n".join(repr(report) for report in reports) + "\n" + caplog.text
    for tenant, report in zip(world.tenants, reports, strict=True):
        keys = report.finding("signatures.keys")
        assert keys is not None and keys.data["keys"] == sorted(world.tenants[tenant].signing_keys)
    for spec in world.tenants.values():
        for value in spec.signing_keys.values():
            for form in forms(value):
                assert form not in shown


def secret_server(answer: tuple[int, str]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        status, body = answer
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{{name}}", handler)
    return app


@pytest.fixture
async def kube_for() -> AsyncIterator:
    """``await kube_for(status, body)``: a Kube client whose API server answers that to a Secret read."""
    runners: list[web.AppRunner] = []
    clients: list[Kube] = []

    async def make(status: int, body: str) -> Kube:
        runner = web.AppRunner(secret_server((status, body)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        kube = await Kube.connect(f"http://{host}:{port}", "token", NAMESPACE, 5.0)
        clients.append(kube)
        return kube

    yield make
    for kube in clients:
        await kube.close()
    for runner in runners:
        await runner.cleanup()


def secret(data: object) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data})


async def test_secret_keys_reads_names_and_logs_nothing(kube_for, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    encoded = base64.b64encode(VALUE.encode()).decode()
    kube = await kube_for(200, secret({"key-b": encoded, "key-a": encoded}))
    assert await kube.secret_keys("s") == ["key-a", "key-b"]
    for form in forms(VALUE):
        assert form not in caplog.text


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # A broken server that echoes the secret in its error message.
        (500, json.dumps({"kind": "Status", "reason": "InternalError", "message": f"cannot decode {VALUE}"})),
        (404, json.dumps({"kind": "Status", "reason": "NotFound", "message": f"no secret {VALUE}"})),
        (403, json.dumps({"kind": "Status", "reason": VALUE, "message": VALUE})),
        # Not a Secret: data is a list, or the body is not JSON at all.
        (200, secret([VALUE, base64.b64encode(VALUE.encode()).decode()])),
        (200, f"<html>{VALUE}</html>"),
    ],
)
async def test_secret_errors_never_carry_values(
    kube_for, caplog: pytest.LogCaptureFixture, status: int, body: str
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    kube = await kube_for(status, body)
    with pytest.raises(KubeError) as caught:
        await kube.secret_keys("s")
    said = f"{caught.value}\n{caught.value.reason}\n{caught.value.kind}\n{caplog.text}"
    for form in forms(VALUE):
        assert form not in said
    assert caught.value.status == (502 if status == 200 else status)

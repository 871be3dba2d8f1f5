"""deploy/Dockerfile, without a Docker engine: the rules of the file itself, and the wheel the
image installs, built here and run from a fresh virtualenv."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import dockerfile
import pytest
from aiohttp import web
from packaging.requirements import Requirement

from commands.doctor import DEFAULT_MANIFEST

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cc", "python3-dev", "libpq-dev")


@dataclass(frozen=True)
class Stage:
    base: str
    name: str
    commands: list[dockerfile.Command]

    def all(self, cmd: str) -> list[dockerfile.Command]:
        return [c for c in self.commands if c.cmd == cmd]


def stages() -> list[Stage]:
    found: list[Stage] = []
    for command in dockerfile.parse_file(str(ROOT / "deploy" / "Dockerfile")):
        if command.cmd == "FROM":
            words = command.value
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            found.append(Stage(words[0], name, []))
        else:
            assert found, f"line {command.start_line}: {command.cmd} before FROM"
            found[-1].commands.append(command)
    return found


def packages() -> list[str]:
    """Top-level packages setuptools ships (pyproject's packages.find include patterns)."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").exists() and any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)
    )


# -- the Dockerfile ------------------------------------------------------------------------------


def test_builder_builds_the_wheel_and_the_final_stage_installs_it() -> None:
    builder, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2 and builder.name
    assert final.base == "python:3.11-slim"
    copied = {word.strip("./") for c in builder.all("COPY") for word in c.value[:-1]}
    assert {"pyproject.toml", PYPROJECT["project"]["readme"], *packages()} <= copied
    assert any("pip wheel" in c.value[0] for c in builder.all("RUN"))
    assert any(f"--from={builder.name}" in c.flags for c in final.all("COPY"))
    installs = [c.value[0] for c in final.all("RUN") if "pip install" in c.value[0]]
    assert installs and all("--no-index" in i and PYPROJECT["project"]["name"] in i for i in installs)


def test_final_stage_has_no_build_tools() -> None:
    for command in stages()[-1].all("RUN"):
        words = command.value[0].replace("\\", " ").split()
        assert not set(words) & set(COMPILERS), f"line {command.start_line}: {command.original}"


def test_runs_flk_serve_as_a_non_root_user() -> None:
    final = stages()[-1]
    (user,) = [c.value[0] for c in final.all("USER")]
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    (script,) = PYPROJECT["project"]["scripts"]
    (entrypoint,), (cmd,) = final.all("ENTRYPOINT"), final.all("CMD")
    assert entrypoint.json and cmd.json
    assert [*entrypoint.value, *cmd.value] == [script, "serve"]


def test_doctor_finds_the_manifest_in_the_image() -> None:
    final = stages()[-1]
    (workdir,) = [c.value[0] for c in final.all("WORKDIR")]
    copies = {str(Path(workdir) / c.value[-1] / Path(c.value[0]).name) for c in final.all("COPY")}
    assert str(Path(workdir) / DEFAULT_MANIFEST) in copies
    assert (ROOT / DEFAULT_MANIFEST).is_file()


def healthcheck() -> list[str]:
    (check,) = stages()[-1].all("HEALTHCHECK")
    assert check.json and check.value[0] == "CMD"
    return list(check.value[1:])


def test_healthcheck_uses_python_not_curl() -> None:
    argv = healthcheck()
    assert argv[0] == "python" and "/healthz" in argv[-1]
    assert not {"curl", "wget"} & set(" ".join(argv).split())


@pytest.fixture
async def health_server() -> AsyncIterator[dict[str, int]]:
    """A loopback /healthz that answers what the test sets."""
    state = {"status": 200}

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=state["status"], text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["port"] = runner.addresses[0][1]
    yield state
    await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run_healthcheck(port: int) -> int:
    argv = [sys.executable, *healthcheck()[1:]]
    env = {**os.environ, "FLK_LISTEN": f"0.0.0.0:{port}"}
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(process.wait(), 30)


async def test_healthcheck_passes_on_a_healthy_bot_and_fails_otherwise(health_server: dict[str, int]) -> None:
    assert await _run_healthcheck(health_server["port"]) == 0
    health_server["status"] = 503
    assert await _run_healthcheck(health_server["port"]) != 0
    assert await _run_healthcheck(_closed_port()) != 0


# -- the wheel -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    wheel: Path
    venv: Path

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        # Away from the checkout, whose packages `python -c` would otherwise import first.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=self.venv,
            env=env,
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The wheel built from a copy of the files the image's builder copies, installed alone into
    a fresh virtualenv whose dependencies come from the project's venv (no downloads)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    src.mkdir()
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"]):
        shutil.copy2(ROOT / name, src / name)
    for package in packages():
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    out = work / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # After the venv's own site-packages: the dependencies, without the project's editable install
    # (a path added by a .pth file is not itself scanned for .pth files).
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return Built(wheel, venv)


def test_build_uses_what_pyproject_asks_for() -> None:
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        assert requirement.specifier.contains(version(requirement.name)), f"the venv's {requirement.name}"


def test_wheel_holds_every_module_and_data_file(built: Built) -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["*"]
    expected = {
        str(path.relative_to(ROOT))
        for package in packages()
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix == ".py" or any(fnmatch.fnmatch(path.name, pattern) for pattern in data))
    }
    names = set(zipfile.ZipFile(built.wheel).namelist())
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert not [n for n in names if n.startswith("sandbox/")], "the sandbox ships in no wheel"
    assert "integrations/store/migrations/script.py.mako" in names
    assert any(n.startswith("integrations/store/migrations/versions/") for n in names)


def test_entry_point_runs_from_the_installed_wheel(built: Built) -> None:
    (script,) = PYPROJECT["project"]["scripts"]
    helped = built.run(script, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout and "doctor" in helped.stdout
    doctor = built.run(script, "doctor", "--help")
    assert doctor.returncode == 0 and "--slack-manifest" in doctor.stdout
    where = built.run("python", "-c", "import bot.service.app, commands.doctor; print(bot.service.app.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(built.venv)

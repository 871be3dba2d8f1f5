"""The objects a mitigation changes, read and patched alike: a ConfigMap's ``data`` or an Ingress's
annotations, each a map of strings at a resourceVersion (the patch's precondition)."""

from __future__ import annotations

from dataclasses import dataclass

from commands.context import Context
from commands.mitigate.models import Forbidden, ObjectRef, Refused
from integrations.kube import KubeError


@dataclass(frozen=True)
class Snapshot:
    """The keys a mitigation may change and the version they were read at."""

    data: dict[str, str]
    resource_version: str


# Kind -> the API's resource name (for RBAC refusals and messages).
RESOURCE = {"ConfigMap": "configmaps", "Ingress": "ingresses"}


def resource_of(ref: ObjectRef) -> str:
    return RESOURCE[ref.kind]


async def fetch(ctx: Context, ref: ObjectRef) -> Snapshot:
    """The object now; ``KubeError`` when the API fails."""
    if ref.kind == "Ingress":
        ingress = await ctx.kube.ingress(ref.name)
        return Snapshot(ingress.annotations, ingress.resource_version)
    cm = await ctx.kube.config_map(ref.name)
    return Snapshot(cm.data, cm.resource_version)


async def write(ctx: Context, ref: ObjectRef, values: dict[str, str | None], resource_version: str) -> Snapshot:
    """One merge patch of ``values`` (None removes a key) at ``resource_version``."""
    if ref.kind == "Ingress":
        ingress = await ctx.kube.patch_ingress_annotations(ref.name, values, resource_version)
        return Snapshot(ingress.annotations, ingress.resource_version)
    cm = await ctx.kube.patch_config_map(ref.name, values, resource_version)
    return Snapshot(cm.data, cm.resource_version)


async def read(ctx: Context, ref: ObjectRef) -> Snapshot:
    """The object a plan needs; a 403 is a typed refusal, a 404 a short one."""
    try:
        return await fetch(ctx, ref)
    except KubeError as exc:
        if exc.status == 403:
            raise Forbidden("get", resource_of(ref), ref.namespace, ref.name) from None
        if exc.status == 404:
            raise Refused(f"{ref.kind.lower()} `{ref.name}` does not exist in namespace {ref.namespace}") from None
        raise

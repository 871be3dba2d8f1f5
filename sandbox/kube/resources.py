"""The resource types the fake serves, described the way the API server names them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    # Fields a fieldSelector may name beyond metadata.name / metadata.namespace.
    fields: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: ``configmaps``, ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """How Invalid errors name the kind: ``ConfigMap``, ``Lease.coordination.k8s.io``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("configmaps", "ConfigMap"),
        Resource("secrets", "Secret", fields=("type",)),
        Resource("pods", "Pod", fields=("spec.nodeName", "spec.restartPolicy", "status.phase", "status.podIP")),
        Resource("events", "Event", fields=_EVENT_FIELDS),
        Resource("services", "Service"),
        Resource("deployments", "Deployment", group="apps"),
        Resource("ingresses", "Ingress", group="networking.k8s.io"),
        Resource("leases", "Lease", group="coordination.k8s.io"),
    )
}

BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES.values()}


def resource_for(group: str, version: str, plural: str) -> Resource | None:
    """The served resource at ``/api(s)/{group}/{version}/.../{plural}``, or None."""
    resource = RESOURCES.get(plural)
    if resource is None or resource.group != group or resource.version != version:
        return None
    return resource

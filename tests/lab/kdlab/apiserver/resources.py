"""The resource types the lab API server knows: group, versions, kind, plural, scope, verbs, short names.

One `ResourceType` per (group, plural); a type served under several versions (Istio v1beta1 and v1) stores
one object and answers with the apiVersion the client asked for, as a conversion-free CRD does.
"""

from dataclasses import dataclass, field

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceType:
    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    subresources: tuple[Subresource, ...] = ()
    crd: bool = False
    # CRD bundle name ("istio", "gateway"...) a scenario switches on; built-in types have none.
    bundle: str = ""
    storage_version: str = ""
    create_only: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def preferred_version(self) -> str:
        return self.storage_version or self.versions[-1]

    def api_version(self, version: str | None = None) -> str:
        version = version or self.preferred_version
        return f"{self.group}/{version}" if self.group else version

    @property
    def group_resource(self) -> str:
        """How API errors name the resource: `pods`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        return next((sub for sub in self.subresources if sub.name == name), None)


STATUS = Subresource("status", "", ("get", "patch", "update"))

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", ("v1",), "Namespace", "namespaces", False, ("ns",),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                 subresources=(STATUS, Subresource("finalize", "", ("update",)))),
    ResourceType("", ("v1",), "Node", "nodes", False, ("no",), subresources=(STATUS, Subresource("proxy", "NodeProxyOptions", ("create", "get")))),
    ResourceType("", ("v1",), "Pod", "pods", True, ("po",), ("all",), subresources=(
        STATUS,
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("log", "", ("get",)),
        Subresource("ephemeralcontainers", "", ("get", "patch", "update")),
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
    )),
    ResourceType("", ("v1",), "Service", "services", True, ("svc",), ("all",), subresources=(STATUS,)),
    ResourceType("", ("v1",), "Endpoints", "endpoints", True, ("ep",)),
    ResourceType("", ("v1",), "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", ("v1",), "Secret", "secrets", True),
    ResourceType("", ("v1",), "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("", ("v1",), "Event", "events", True, ("ev",)),
    ResourceType("discovery.k8s.io", ("v1",), "EndpointSlice", "endpointslices", True),
    ResourceType("apps", ("v1",), "Deployment", "deployments", True, ("deploy",), ("all",),
                 subresources=(STATUS, Subresource("scale", "Scale", ("get", "patch", "update")))),
    ResourceType("apps", ("v1",), "ReplicaSet", "replicasets", True, ("rs",), ("all",), subresources=(STATUS,)),
    ResourceType("apps", ("v1",), "DaemonSet", "daemonsets", True, ("ds",), ("all",), subresources=(STATUS,)),
    ResourceType("networking.k8s.io", ("v1",), "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    ResourceType("authorization.k8s.io", ("v1",), "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
                 verbs=("create",), create_only=True),
    ResourceType("apiextensions.k8s.io", ("v1",), "CustomResourceDefinition", "customresourcedefinitions", False,
                 ("crd", "crds"), ("api-extensions",), subresources=(STATUS,)),
    ResourceType("networking.istio.io", ("v1beta1", "v1"), "ServiceEntry", "serviceentries", True, ("se",),
                 ("istio-io", "networking-istio-io"), crd=True, bundle="istio", storage_version="v1"),
    ResourceType("networking.istio.io", ("v1beta1", "v1"), "Sidecar", "sidecars", True, (),
                 ("istio-io", "networking-istio-io"), crd=True, bundle="istio", storage_version="v1"),
    ResourceType("policy.networking.k8s.io", ("v1alpha1",), "AdminNetworkPolicy", "adminnetworkpolicies", False, ("anp",),
                 crd=True, bundle="admin-network-policy"),
    ResourceType("policy.networking.k8s.io", ("v1alpha1",), "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies", False,
                 ("banp",), crd=True, bundle="admin-network-policy"),
    ResourceType("cilium.io", ("v2",), "CiliumNetworkPolicy", "ciliumnetworkpolicies", True, ("cnp", "ciliumnp"),
                 ("cilium", "ciliumpolicy"), crd=True, bundle="cilium"),
    ResourceType("cilium.io", ("v2",), "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies", False,
                 ("ccnp",), ("cilium", "ciliumpolicy"), crd=True, bundle="cilium"),
)

CRD_BUNDLES = tuple(sorted({rt.bundle for rt in RESOURCE_TYPES if rt.bundle}))


@dataclass
class Registry:
    """The types one cluster serves: every built-in type plus the CRD bundles its scenario installs."""

    bundles: frozenset[str] = frozenset()
    types: list[ResourceType] = field(default_factory=list)

    def __post_init__(self):
        self.types = [rt for rt in RESOURCE_TYPES if not rt.bundle or rt.bundle in self.bundles]
        self._by_group_plural = {(rt.group, rt.plural): rt for rt in self.types}
        self._by_kind = {(rt.group, rt.kind): rt for rt in self.types}

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        found = self._by_group_plural.get((group, plural))
        return found if found and version in found.versions else None

    def by_api_version_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _unused, version = api_version.rpartition("/")
        found = self._by_kind.get((group, kind))
        return found if found and version in found.versions else None

    def by_group_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def groups(self) -> dict[str, list[str]]:
        """Named groups with their versions, oldest first (the core group is served under /api)."""
        found: dict[str, list[str]] = {}
        for rt in self.types:
            if rt.group:
                versions = found.setdefault(rt.group, [])
                versions.extend(v for v in rt.versions if v not in versions)
        return found

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.types if rt.group == group and version in rt.versions]

"""The HTTP side of one cluster's API server: discovery, CRUD, watch, patch, apply, exec, logs, RBAC, audit, faults."""

import asyncio
import contextlib
import copy
import hashlib
import ipaddress
import json
import random
import re
import secrets
import time
from dataclasses import dataclass, field

import yaml
from aiohttp import web

from . import execution, objects, patch, podsecurity, protobuf, selectors, tables
from .rbac import Attributes, Authenticator, Identity, forbidden_message
from .resources import Registry, ResourceType
from .store import ResourceVersionTooOld, Store, now_rfc3339

JSON = "application/json"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class ApiError(Exception):
    """An error the API server answers with a Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details, self.headers = code, reason, message, details, headers

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def not_found(rt: ResourceType, name: str) -> ApiError:
    details = {"name": name, "kind": rt.plural} | ({"group": rt.group} if rt.group else {})
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rt: ResourceType, name: str, errors: list[objects.FieldError]) -> ApiError:
    details = {"name": name, "kind": rt.kind, "causes": [e.cause() for e in errors]} | ({"group": rt.group} if rt.group else {})
    return ApiError(422, "Invalid", objects.invalid_message(rt.kind, name, errors), details)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


FAULT_KINDS = ("throttle", "errors", "drop", "drop_after_write")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@dataclass
class Faults:
    """What a scenario asks the API server to suffer; counts go down as requests consume them.

    Each kind (throttle, errors, drop, drop_after_write) may be aimed with `methods` and `path` (a regular expression
    searched in the request path): only the requests it matches suffer it and consume its count. `drop_after_write`
    handles the request (a create is stored) and then drops the connection before the answer: the client cannot know."""

    latency_ms: int = 0
    throttle_requests: int = 0
    throttle_fraction: float = 0.0
    retry_after: int = 1
    error_requests: int = 0
    error_fraction: float = 0.0
    error_code: int = 500
    drop_requests: int = 0
    drop_fraction: float = 0.0
    drop_after_write_requests: int = 0
    drop_after_write_fraction: float = 0.0
    down: bool = False
    scopes: dict = field(default_factory=dict)  # kind -> {"methods": [...], "path": regex}; a kind without one hits every request

    @classmethod
    def from_spec(cls, spec: dict | None) -> "Faults":
        """Raises ValueError naming the bad field."""
        spec = spec or {}
        throttle, errors, drop, after = (spec.get(kind) or {} for kind in FAULT_KINDS)
        faults = cls(latency_ms=int(spec.get("latency_ms", 0)), throttle_requests=int(throttle.get("requests", 0)),
                     throttle_fraction=float(throttle.get("fraction", 0.0)), retry_after=int(throttle.get("retry_after", 1)),
                     error_requests=int(errors.get("requests", 0)), error_fraction=float(errors.get("fraction", 0.0)),
                     error_code=int(errors.get("code", 500)), drop_requests=int(drop.get("requests", 0)),
                     drop_fraction=float(drop.get("fraction", 0.0)), drop_after_write_requests=int(after.get("requests", 0)),
                     drop_after_write_fraction=float(after.get("fraction", 0.0)), down=bool(spec.get("down", False)))
        for kind in FAULT_KINDS:
            entry = spec.get(kind) or {}
            methods = [str(m).upper() for m in entry.get("methods") or []]
            unknown = sorted(set(methods) - set(HTTP_METHODS))
            if unknown:
                raise ValueError(f"faults.{kind}.methods: {unknown} are not HTTP methods ({', '.join(HTTP_METHODS)})")
            path = str(entry.get("path") or "")
            try:
                re.compile(path)
            except re.error as error:
                raise ValueError(f"faults.{kind}.path: {path!r} is not a regular expression ({error})") from None
            if methods or path:
                faults.scopes[kind] = {"methods": methods, "path": path}
        return faults

    def take(self, kind: str, method: str, path: str) -> bool:
        scope = self.scopes.get(kind)
        if scope and ((scope["methods"] and method not in scope["methods"]) or (scope["path"] and not re.search(scope["path"], path))):
            return False
        prefix = {"errors": "error"}.get(kind, kind)
        count_attr, fraction_attr = f"{prefix}_requests", f"{prefix}_fraction"
        if getattr(self, count_attr) > 0:
            setattr(self, count_attr, getattr(self, count_attr) - 1)
            return True
        return random.random() < getattr(self, fraction_attr)


@dataclass
class Cluster:
    """One cluster: its types, objects, tokens, where its pods run, and its audit log."""

    name: str
    registry: Registry
    store: Store
    authenticator: Authenticator
    runtime: execution.HostRuntime
    audit_path: str | None = None
    kubernetes_version: str = "1.30.4"
    container_runtime: str = "containerd"  # or "docker": how a missing executable is reported
    faults: Faults = field(default_factory=Faults)
    log_files: dict = field(default_factory=dict)  # "ns/pod/container" -> the file its logs come from
    pod_refs: dict = field(default_factory=dict)  # API "ns/pod" -> the lab's "ns/pod" (CoreDNS pods are renamed)
    audit_file: object = None
    admin_token: str = ""
    pod_ip_allocator: object = None  # callable(pod) -> ip, set by the lab integration

    def audit(self, record: dict) -> None:
        if self.audit_file:
            self.audit_file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.audit_file.flush()


# ---- request parsing --------------------------------------------------------------------------------------

@dataclass
class Target:
    rt: ResourceType
    version: str
    namespace: str
    name: str
    subresource: str


def parse_target(cluster: Cluster, group: str, version: str, rest: list[str]) -> Target:
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = cluster.registry.lookup(group, version, rest[2])
        if candidate and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    rt = cluster.registry.lookup(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and rt.subresource(subresource) is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
    return Target(rt, version, namespace, name, subresource)


def verb_of(method: str, target: Target, query) -> str:
    if target.subresource in ("exec", "attach", "portforward"):
        return "create"
    if method == "GET":
        if target.name:
            return "get"
        return "watch" if query.get("watch") in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if target.name else "deletecollection"}.get(method, method.lower())


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def output(obj: dict, rt: ResourceType, version: str) -> dict:
    shown = copy.deepcopy(obj)
    shown["apiVersion"] = rt.api_version(version)
    shown["kind"] = rt.kind
    return shown


def json_response(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")), status=status, content_type=JSON, headers=headers)


async def read_body(request: web.Request, content_type: str = "json"):
    if request.content_type == "application/vnd.kubernetes.protobuf":
        # kubectl 1.32+ typed clients (create configmap/namespace/secret, auth can-i) send protobuf bodies and no JSON fallback.
        try:
            return protobuf.decode_object(await request.read())
        except (protobuf.ProtobufError, UnicodeDecodeError) as error:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: "
                           f"application/json, application/yaml, application/vnd.kubernetes.protobuf ({error})") from error
    if request.content_type == "application/cbor":
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: "
                       "application/json, application/yaml, application/vnd.kubernetes.protobuf")
    raw = await request.read()
    try:
        if content_type == "yaml":
            return yaml.safe_load(raw.decode() or "{}")
        return json.loads(raw or b"{}")
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise bad_request(f"the body of the request could not be decoded: {error}") from error


# ---- the API server ---------------------------------------------------------------------------------------

class ApiServer:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.store = cluster.store

    # -- discovery --
    def version_info(self) -> dict:
        major, minor, _unused = self.cluster.kubernetes_version.split(".")
        return {"major": major, "minor": minor, "gitVersion": f"v{self.cluster.kubernetes_version}",
                "gitCommit": hashlib.sha256(self.cluster.kubernetes_version.encode()).hexdigest()[:40], "gitTreeState": "clean",
                "buildDate": "2024-08-14T19:00:00Z", "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"}

    def api_group(self, group: str, versions: list[str]) -> dict:
        types = [rt for rt in self.cluster.registry.types if rt.group == group]
        preferred = types[0].preferred_version
        return {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in reversed(versions)],
                "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred}}

    def resource_list(self, group: str, version: str) -> dict:
        resources = []
        for rt in self.cluster.registry.in_group_version(group, version):
            entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                     "verbs": list(rt.verbs),
                     "storageVersionHash": hashlib.sha256(f"{rt.group}/{rt.plural}".encode()).hexdigest()[:11]}
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            for sub in rt.subresources:
                resources.append({"name": f"{rt.plural}/{sub.name}", "singularName": "", "namespaced": rt.namespaced,
                                  "kind": sub.kind or rt.kind, "verbs": list(sub.verbs)}
                                 | ({"group": "autoscaling", "version": "v1"} if sub.name == "scale" else {}))
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources}

    def discovery(self, request: web.Request, parts: list[str]) -> web.Response:
        registry = self.cluster.registry
        if parts == ["api"]:
            return json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})
        if parts == ["apis"]:
            return json_response({"kind": "APIGroupList", "apiVersion": "v1",
                                  "groups": [self.api_group(g, v) for g, v in registry.groups().items()]})
        if parts == ["api", "v1"]:
            return json_response(self.resource_list("", "v1"))
        if len(parts) == 2 and parts[1] in registry.groups():
            return json_response({"kind": "APIGroup", "apiVersion": "v1"} | self.api_group(parts[1], registry.groups()[parts[1]]))
        if len(parts) == 3 and parts[2] in registry.groups().get(parts[1], []):
            return json_response(self.resource_list(parts[1], parts[2]))
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def openapi_v3(self, parts: list[str]) -> dict:
        """Just enough OpenAPI v3 for kubectl: one document per group-version whose PATCH operations carry the GVK and accept
        `fieldValidation`, so kubectl validates server-side (field validation is accepted, not enforced)."""
        registry = self.cluster.registry
        versions = [("", "v1")] + [(g, v) for g, vs in registry.groups().items() for v in vs]
        if not parts:
            return {"paths": {(f"apis/{g}/{v}" if g else "api/v1"): {"serverRelativeURL": f"/openapi/v3/{f'apis/{g}/{v}' if g else 'api/v1'}"
                                                                     f"?hash={hashlib.sha256(f'{g}/{v}'.encode()).hexdigest()[:16].upper()}"}
                              for g, v in versions}}
        group, version = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if (group, version) not in versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        parameter = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        paths = {}
        for rt in registry.in_group_version(group, version):
            prefix = f"/apis/{group}/{version}" if group else "/api/v1"
            scope = "/namespaces/{namespace}" if rt.namespaced else ""
            gvk = {"group": group, "version": version, "kind": rt.kind}
            paths[f"{prefix}{scope}/{rt.plural}/{{name}}"] = {
                action: {"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": [parameter],
                         "responses": {"200": {"description": "OK"}}} for action in ("patch", "put")}
            paths[f"{prefix}{scope}/{rt.plural}"] = {"post": {"x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk,
                                                              "parameters": [parameter], "responses": {"201": {"description": "Created"}}}}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{self.cluster.kubernetes_version}"}, "paths": paths,
                "components": {"schemas": {}}}

    # -- authorization --
    def authorize(self, identity: Identity, verb: str, target: Target, name: str | None = None) -> None:
        resource = f"{target.rt.plural}/{target.subresource}" if target.subresource else target.rt.plural
        attrs = Attributes(verb, target.rt.group, resource, target.namespace, target.name if name is None else name)
        if not identity.allows(attrs):
            details = {"name": attrs.name, "kind": target.rt.plural} | ({"group": target.rt.group} if target.rt.group else {})
            raise ApiError(403, "Forbidden", forbidden_message(identity, attrs, target.rt.group_resource), details)

    # -- reads --
    def require_namespace(self, namespace: str) -> None:
        namespaces = self.cluster.registry.lookup("", "v1", "namespaces")
        if namespace and self.store.get(namespaces, "", namespace) is None:
            raise not_found(namespaces, namespace)

    def get_object(self, target: Target) -> dict:
        obj = self.store.get(target.rt, target.namespace, target.name)
        if obj is None:
            raise not_found(target.rt, target.name)
        return obj

    def filtered(self, target: Target, query) -> list[dict]:
        try:
            label_requirements = selectors.parse_label_selector(query.get("labelSelector"))
            field_terms = selectors.parse_field_selector(query.get("fieldSelector"))
            selectors.check_field_selector(field_terms, target.rt.kind)
        except selectors.SelectorError as error:
            raise bad_request(str(error)) from error
        return [obj for obj in self.store.list_of(target.rt, target.namespace)
                if selectors.matches_labels(label_requirements, obj["metadata"].get("labels"))
                and selectors.matches_fields(field_terms, obj)]

    def list_response(self, request: web.Request, target: Target) -> web.Response:
        found = self.filtered(target, request.query)
        resource_version = str(self.store.resource_version)
        if wants_table(request):
            include = request.query.get("includeObject", "Metadata")
            return json_response(tables.render_table(target.rt.kind, [output(o, target.rt, target.version) for o in found],
                                                     resource_version, include))
        return json_response({"kind": target.rt.list_kind, "apiVersion": target.rt.api_version(target.version),
                              "metadata": {"resourceVersion": resource_version},
                              "items": [output(o, target.rt, target.version) for o in found]})

    async def watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        found_now = self.filtered(target, request.query)  # also validates the selectors before the stream starts
        label_requirements = selectors.parse_label_selector(request.query.get("labelSelector"))
        field_terms = selectors.parse_field_selector(request.query.get("fieldSelector"))
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        as_table = wants_table(request)
        queue = self.store.subscribe()
        start_version = self.store.resource_version
        requested = request.query.get("resourceVersion", "")
        response = web.StreamResponse(headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"})
        await response.prepare(request)

        def frame(event_type: str, obj: dict) -> bytes:
            shown = output(obj, target.rt, target.version)
            if as_table:
                shown = tables.render_table(target.rt.kind, [shown], shown["metadata"]["resourceVersion"], "Object")
            return (json.dumps({"type": event_type, "object": shown}, separators=(",", ":")) + "\n").encode()

        def relevant(event) -> bool:
            return (event.group == target.rt.group and event.plural == target.rt.plural
                    and (not target.namespace or event.obj["metadata"].get("namespace") == target.namespace)
                    and selectors.matches_labels(label_requirements, event.obj["metadata"].get("labels"))
                    and selectors.matches_fields(field_terms, event.obj))

        try:
            if requested in ("", "0"):
                for obj in found_now:
                    await response.write(frame("ADDED", obj))
            else:
                try:
                    backlog = self.store.events_since(int(requested))
                except (ValueError, ResourceVersionTooOld) as error:
                    status = ApiError(410, "Expired", str(error)).status()
                    await response.write((json.dumps({"type": "ERROR", "object": status}) + "\n").encode())
                    return response
                for event in backlog:
                    if event.resource_version <= start_version and relevant(event):
                        await response.write(frame(event.type, event.obj))
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    event = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                if event.resource_version > start_version and relevant(event):
                    await response.write(frame(event.type, event.obj))
        except ConnectionResetError:
            pass
        finally:
            self.store.unsubscribe(queue)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # -- writes --
    def dry_run(self, query) -> bool:
        values = query.getall("dryRun", [])
        if any(value != "All" for value in values):
            raise bad_request(f"Invalid dryRun value: {values}; supported values: All")
        return bool(values)

    def check_body(self, target: Target, body) -> dict:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        expected = target.rt.api_version(target.version)
        if body.get("apiVersion", expected) != expected:
            raise bad_request(f"the API version in the data ({body['apiVersion']}) does not match the expected API version ({expected})")
        if body.get("kind", target.rt.kind) != target.rt.kind:
            raise bad_request(f"the kind in the data ({body['kind']}) does not match the expected kind ({target.rt.kind})")
        body.setdefault("metadata", {})
        if not isinstance(body["metadata"], dict):
            raise bad_request("metadata must be an object")
        return body

    def prepare_create(self, target: Target, body: dict) -> dict:
        body = self.check_body(target, copy.deepcopy(body))
        metadata = body["metadata"]
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + secrets.token_hex(3)[:5]
        if target.rt.namespaced:
            namespace = target.namespace or metadata.get("namespace") or "default"
            if metadata.get("namespace", namespace) != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            metadata["namespace"] = namespace
            self.require_namespace(namespace)
        else:
            metadata.pop("namespace", None)
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            metadata.pop(key, None)
        body["apiVersion"], body["kind"] = target.rt.api_version(target.version), target.rt.kind
        errors = objects.validate(target.rt.kind, body)
        if errors:
            raise invalid(target.rt, metadata.get("name", ""), errors)
        if self.store.get(target.rt, metadata.get("namespace", ""), metadata["name"]) is not None:
            raise ApiError(409, "AlreadyExists", f'{target.rt.group_resource} "{metadata["name"]}" already exists',
                           {"name": metadata["name"], "kind": target.rt.plural} | ({"group": target.rt.group} if target.rt.group else {}))
        if target.rt.kind == "Pod":
            self.admit_pod_security(body)
        self.apply_defaults(target.rt, body)
        return body

    def admit_pod_security(self, pod: dict) -> None:
        """Pod Security admission: the pod's namespace's enforce level, answered as kube-apiserver does (403 Forbidden)."""
        namespace = self.store.get(self.cluster.registry.lookup("", "v1", "namespaces"), "", pod["metadata"].get("namespace", ""))
        message = podsecurity.refusal(((namespace or {}).get("metadata") or {}).get("labels") or {}, pod)
        if message:
            raise ApiError(403, "Forbidden", message, {"name": pod["metadata"].get("name", ""), "kind": "pods"})

    def apply_defaults(self, rt: ResourceType, obj: dict) -> None:
        """What admission, the scheduler, the kubelet and controllers would do by the time a client looks."""
        metadata, now = obj["metadata"], now_rfc3339()
        match rt.kind:
            case "Namespace":
                metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata["name"]
                obj["spec"] = {"finalizers": ["kubernetes"]}
                obj["status"] = {"phase": "Active"}
            case "Service":
                spec = obj.setdefault("spec", {})
                spec.setdefault("type", "ClusterIP")
                if spec["type"] != "ExternalName" and "clusterIP" not in spec:
                    spec["clusterIP"] = self.allocate_service_ip()
                    spec["clusterIPs"] = [spec["clusterIP"]]
                for port in spec.get("ports") or []:
                    port.setdefault("protocol", "TCP")
                    port.setdefault("targetPort", port.get("port"))
                spec.setdefault("sessionAffinity", "None")
            case "Pod":
                self.schedule_and_run(obj, now)
            case "Deployment" | "ReplicaSet":
                replicas = obj.setdefault("spec", {}).setdefault("replicas", 1)
                obj["status"] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                                 "availableReplicas": replicas, "updatedReplicas": replicas}
            case "DaemonSet":
                count = len(self.store.list_of(self.cluster.registry.lookup("", "v1", "nodes"), None))
                obj["status"] = {"observedGeneration": 1, "desiredNumberScheduled": count, "currentNumberScheduled": count,
                                 "numberReady": count, "updatedNumberScheduled": count, "numberAvailable": count,
                                 "numberMisscheduled": 0}

    def allocate_service_ip(self) -> str:
        services = self.cluster.registry.lookup("", "v1", "services")
        used = {(s.get("spec") or {}).get("clusterIP") for s in self.store.list_of(services, None)}
        for host in ipaddress.ip_network("10.96.0.0/16").hosts():
            if str(host) not in used and host.packed[-2:] > b"\x00\x0a":
                return str(host)
        raise ApiError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")

    def node_named(self, name: str) -> dict | None:
        return self.store.get(self.cluster.registry.lookup("", "v1", "nodes"), "", name)

    def schedule_and_run(self, pod: dict, now: str) -> None:
        spec = pod.setdefault("spec", {})
        nodes = self.store.list_of(self.cluster.registry.lookup("", "v1", "nodes"), None)
        if not spec.get("nodeName") and nodes:
            wanted = spec.get("nodeSelector") or {}
            fitting = [n for n in nodes if all(n["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]
            if fitting:
                spec["nodeName"] = fitting[0]["metadata"]["name"]
        for key, default in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"), ("schedulerName", "default-scheduler"),
                             ("serviceAccountName", "default"), ("terminationGracePeriodSeconds", 30), ("securityContext", {}),
                             ("enableServiceLinks", True), ("preemptionPolicy", "PreemptLowerPriority"), ("priority", 0)):
            spec.setdefault(key, default)
        for container in spec.get("containers") or []:
            container.setdefault("imagePullPolicy", "Always" if container.get("image", "").endswith(":latest") or ":" not in container.get(
                "image", "") else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
        node = self.node_named(spec.get("nodeName", "")) if spec.get("nodeName") else None
        if node is None:
            pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": now,
                 "message": f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) didn't match Pod's node affinity/selector."}]}
            return
        host_ip = next((a["address"] for a in node.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP"), "")
        pod_ip = host_ip if spec.get("hostNetwork") else self.allocate_pod_ip(pod, node)
        pod["status"] = {
            "phase": "Running", "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "startTime": now, "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [container_status(c, now) for c in spec.get("containers") or []],
        }

    def allocate_pod_ip(self, pod: dict, node: dict) -> str:
        if self.cluster.pod_ip_allocator:
            return self.cluster.pod_ip_allocator(pod, node)
        return self.allocate_pod_ip_from_cidr(node)

    def allocate_pod_ip_from_cidr(self, node: dict) -> str:
        """Pods created through the API take addresses from the top of the node's podCIDR (the lab's own start at .2)."""
        pods = self.cluster.registry.lookup("", "v1", "pods")
        used = {(p.get("status") or {}).get("podIP") for p in self.store.list_of(pods, None)}
        cidr = ipaddress.ip_network((node.get("spec") or {}).get("podCIDR") or "10.244.0.0/24")
        for host in list(cidr.hosts())[100:]:
            if str(host) not in used:
                return str(host)
        raise ApiError(500, "InternalError", f"Internal error occurred: no free pod IP in {cidr}")

    def commit_create(self, target: Target, obj: dict, dry_run: bool) -> dict:
        if dry_run:
            obj["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
            obj["metadata"].setdefault("creationTimestamp", now_rfc3339())
            obj["metadata"]["generation"] = 1
            return obj
        created = self.store.create(target.rt, obj)
        if target.rt.kind == "Namespace":
            self.populate_namespace(created["metadata"]["name"])
        return created

    def populate_namespace(self, namespace: str) -> None:
        service_accounts = self.cluster.registry.lookup("", "v1", "serviceaccounts")
        if self.store.get(service_accounts, namespace, "default") is None:
            self.store.create(service_accounts, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                 "metadata": {"name": "default", "namespace": namespace}})
        configmaps = self.cluster.registry.lookup("", "v1", "configmaps")
        if self.store.get(configmaps, namespace, "kube-root-ca.crt") is None:
            self.store.create(configmaps, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": "kube-root-ca.crt", "namespace": namespace, "annotations": {
                    "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints"}},
                "data": {"ca.crt": ""}})

    def prepare_update(self, target: Target, old: dict, new: dict) -> dict:
        new = self.check_body(target, copy.deepcopy(new))
        metadata, old_metadata = new["metadata"], old["metadata"]
        if metadata.get("name", target.name) != target.name:
            raise bad_request(f"the name of the object ({metadata['name']}) does not match the name on the URL ({target.name})")
        wanted_version = metadata.get("resourceVersion")
        if wanted_version and wanted_version != old_metadata["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {target.rt.group_resource} "{target.name}": the object has been '
                           'modified; please apply your changes to the latest version and try again',
                           {"name": target.name, "kind": target.rt.plural} | ({"group": target.rt.group} if target.rt.group else {}))
        metadata["name"] = target.name
        for key in ("uid", "creationTimestamp", "namespace", "generation"):
            if key in old_metadata:
                metadata[key] = old_metadata[key]
        new["apiVersion"], new["kind"] = target.rt.api_version(target.version), target.rt.kind
        has_status = target.rt.subresource("status") is not None
        if target.subresource in ("status",):
            new = {**copy.deepcopy(old), "status": new.get("status"), "metadata": metadata}
        elif target.subresource == "ephemeralcontainers":
            ephemeral = (new.get("spec") or {}).get("ephemeralContainers") or []
            new = copy.deepcopy(old)
            new["spec"]["ephemeralContainers"] = ephemeral
            errors = objects.ephemeral_update_errors(old, new)
            if errors:
                raise invalid(target.rt, target.name, errors)
            self.admit_pod_security(new)
            self.run_ephemeral_containers(new)
        elif has_status and "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        errors = objects.validate(target.rt.kind, new)
        if target.rt.kind == "Pod" and not target.subresource:
            errors += objects.pod_update_errors(old, new)
        if errors:
            raise invalid(target.rt, target.name, errors)
        if objects.spec_changed(old, new):
            metadata["generation"] = old_metadata.get("generation", 1) + 1
        return new

    def run_ephemeral_containers(self, pod: dict) -> None:
        now = now_rfc3339()
        statuses = {s["name"]: s for s in pod.setdefault("status", {}).get("ephemeralContainerStatuses") or []}
        for container in pod["spec"]["ephemeralContainers"]:
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", "IfNotPresent")
            if container["name"] not in statuses:
                statuses[container["name"]] = container_status(container, now) | {"ready": False}
        pod["status"]["ephemeralContainerStatuses"] = list(statuses.values())

    def commit_update(self, target: Target, obj: dict, dry_run: bool) -> dict:
        return obj if dry_run else self.store.replace(target.rt, obj)

    def apply_patch(self, target: Target, old: dict | None, body_text: bytes, patch_type: str, query) -> tuple[dict, bool]:
        """The patched object and whether it is new (server-side apply creates)."""
        try:
            applied = yaml.safe_load(body_text.decode() or "{}") if patch_type == "apply" else json.loads(body_text or b"null")
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as error:
            raise bad_request(f"error decoding patch: {error}") from error
        try:
            if patch_type == "json":
                return patch.json_patch(old, applied), False
            if patch_type == "merge":
                return patch.merge_patch(old, applied), False
            if patch_type == "strategic":
                if target.rt.crd:
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: "
                                   "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
                return patch.strategic_merge(old, applied), False
            if not query.get("fieldManager"):
                raise invalid_options("fieldManager: Required value: is required for apply patch")
            if not isinstance(applied, dict):
                raise bad_request("error decoding YAML: the applied configuration must be an object")
            applied = self.check_body(target, applied)
            if applied["metadata"].get("name", target.name) != target.name:
                raise bad_request(f"the name of the object ({applied['metadata']['name']}) does not match the name on the URL ({target.name})")
            applied["metadata"]["name"] = target.name
            if old is None:
                return applied, True
            merge = patch.merge_patch if target.rt.crd else patch.strategic_merge
            return merge(old, applied), False
        except patch.PatchError as error:
            raise ApiError(422, "Invalid", str(error), {}) from error

    # -- the request entry point --
    async def handle_resource(self, request: web.Request, identity: Identity, target: Target) -> web.StreamResponse:
        query, method = request.query, request.method
        verb = verb_of(method, target, query)
        request["audit"].update(verb=verb, resource=f"{target.rt.plural}/{target.subresource}" if target.subresource else target.rt.plural,
                                namespace=target.namespace, name=target.name)
        if verb not in target.rt.verbs and not target.subresource:
            raise method_not_allowed()
        if target.subresource and verb not in target.rt.subresource(target.subresource).verbs:
            raise method_not_allowed()
        if target.rt.create_only:
            self.authorize(identity, verb, target)
            return await self.self_subject_access_review(request, identity)
        self.authorize(identity, verb, target)
        dry_run = self.dry_run(query) if verb in WRITE_VERBS else False
        request["audit"]["dry_run"] = dry_run
        if target.subresource == "exec":
            return await self.exec(request, target)
        if target.subresource == "log":
            return self.logs(request, target)
        if target.subresource in ("attach", "portforward") or (target.subresource == "proxy"):
            raise bad_request(f"{target.subresource} is not supported by the lab API server")
        match verb:
            case "list":
                return self.list_response(request, target)
            case "watch":
                return await self.watch(request, target)
            case "get":
                obj = output(self.get_object(target), target.rt, target.version)
                if wants_table(request):
                    return json_response(tables.render_table(target.rt.kind, [obj], obj["metadata"]["resourceVersion"],
                                                             query.get("includeObject", "Metadata")))
                return json_response(obj)
            case "create":
                if target.name:
                    raise method_not_allowed()
                obj = self.prepare_create(target, await read_body(request))
                request["audit"]["name"] = obj["metadata"]["name"]
                return json_response(output(self.commit_create(target, obj, dry_run), target.rt, target.version), 201)
            case "update":
                old = self.get_object(target)
                obj = self.prepare_update(target, old, await read_body(request))
                return json_response(output(self.commit_update(target, obj, dry_run), target.rt, target.version))
            case "patch":
                patch_type = PATCH_TYPES.get(request.content_type)
                if patch_type is None or patch_type == "apply-cbor":
                    raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: '
                                   f'{", ".join(t for t in PATCH_TYPES if "cbor" not in t)}')
                old = self.store.get(target.rt, target.namespace, target.name)
                if old is None and patch_type != "apply":
                    raise not_found(target.rt, target.name)
                if old is None and target.subresource:
                    raise not_found(target.rt, target.name)
                patched, is_new = self.apply_patch(target, old, await request.read(), patch_type, query)
                if is_new:
                    obj = self.prepare_create(target, patched)
                    return json_response(output(self.commit_create(target, obj, dry_run), target.rt, target.version), 201)
                obj = self.prepare_update(target, old, patched)
                return json_response(output(self.commit_update(target, obj, dry_run), target.rt, target.version))
            case "delete":
                obj = self.get_object(target)
                if dry_run:
                    return json_response(output(obj, target.rt, target.version))
                return json_response(self.delete(target.rt, obj))
            case "deletecollection":
                found = self.filtered(target, query)
                if not dry_run:
                    for obj in found:
                        self.delete(target.rt, obj)
                return json_response({"kind": target.rt.list_kind, "apiVersion": target.rt.api_version(target.version),
                                      "metadata": {"resourceVersion": str(self.store.resource_version)},
                                      "items": [output(o, target.rt, target.version) for o in found]})
        raise method_not_allowed()

    def delete(self, rt: ResourceType, obj: dict) -> dict:
        namespace, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if rt.kind == "Namespace":
            for other in self.cluster.registry.types:
                if other.namespaced:
                    for child in self.store.list_of(other, name):
                        self.store.delete(other, name, child["metadata"]["name"])
        deleted = self.store.delete(rt, namespace, name)
        if rt.kind in ("Pod", "Namespace"):
            deleted["metadata"]["deletionTimestamp"] = now_rfc3339()
            if rt.kind == "Namespace":
                deleted["status"] = {"phase": "Terminating"}
            return output(deleted, rt, rt.preferred_version)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "kind": rt.plural, "uid": obj["metadata"]["uid"]} | ({"group": rt.group} if rt.group else {})}

    async def self_subject_access_review(self, request: web.Request, identity: Identity) -> web.Response:
        review = await read_body(request)
        spec = (review.get("spec") or {}).get("resourceAttributes") or {}
        resource = spec.get("resource", "") + (f"/{spec['subresource']}" if spec.get("subresource") else "")
        attrs = Attributes(spec.get("verb", ""), spec.get("group", ""), resource, spec.get("namespace", ""), spec.get("name", ""))
        allowed = identity.allows(attrs)
        review["status"] = {"allowed": allowed} | ({} if allowed else {"reason": ""})
        review.setdefault("metadata", {})["creationTimestamp"] = None
        return json_response(review | {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"}, 201)

    # -- pods/exec and pods/log --
    def container_of(self, pod: dict, requested: str, allow_ephemeral: bool) -> str:
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []] if allow_ephemeral else []
        name = pod["metadata"]["name"]
        if not requested:
            default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
            if default:
                return default
            if len(names) == 1:
                return names[0]
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                              + (f" or one of the ephemeral containers: [{' '.join(ephemeral)}]" if ephemeral else ""))
        if requested not in names + ephemeral + [c["name"] for c in spec.get("initContainers") or []]:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested

    async def exec(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        pod = self.get_object(Target(target.rt, target.version, target.namespace, target.name, ""))
        container = self.container_of(pod, query.get("container", ""), allow_ephemeral=True)
        argv = query.getall("command", [])
        if not argv:
            raise bad_request("you must specify at least one command for the container")
        options = {name: query.get(name, "false").lower() in ("true", "1") for name in ("stdin", "stdout", "stderr", "tty")}
        if not (options["stdin"] or options["stdout"] or options["stderr"]):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if not (pod.get("spec") or {}).get("nodeName"):
            raise bad_request(f"pod {target.name} does not have a host assigned")
        statuses = (pod.get("status") or {}).get("containerStatuses", []) + (pod.get("status") or {}).get("ephemeralContainerStatuses", [])
        running = any(s.get("name") == container and "running" in (s.get("state") or {}) for s in statuses)
        if (pod.get("status") or {}).get("phase") != "Running" or not running:
            raise bad_request(f'unable to upgrade connection: container not found ("{container}")')
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise bad_request("Upgrade request required")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if not set(offered) & set(execution.PROTOCOLS):
            raise bad_request(f"unable to upgrade: no supported subprotocol among {offered}; this server speaks "
                              f"{', '.join(execution.PROTOCOLS)}")
        request["audit"]["command"] = argv
        return await execution.serve_exec(request, self.cluster.runtime, pod, container, argv, options, self.cluster.container_runtime)

    def logs(self, request: web.Request, target: Target) -> web.Response:
        query = request.query
        pod = self.get_object(Target(target.rt, target.version, target.namespace, target.name, ""))
        container = self.container_of(pod, query.get("container", ""), allow_ephemeral=True)
        log_file = self.cluster.log_files.get(f"{target.namespace}/{target.name}/{container}")
        try:
            with open(log_file, encoding="utf-8", errors="replace") if log_file else contextlib.nullcontext(None) as handle:
                lines = handle.read().splitlines() if handle else []
        except FileNotFoundError:
            lines = []
        if query.get("sinceSeconds"):
            lines = lines_since(lines, int(query["sinceSeconds"]))
        if query.get("tailLines"):
            count = int(query["tailLines"])
            lines = lines[-count:] if count > 0 else []
        text = "".join(line + "\n" for line in lines)
        if query.get("limitBytes"):
            text = text[: int(query["limitBytes"])]
        return web.Response(text=text, content_type="text/plain")


def lines_since(lines: list[str], seconds: int) -> list[str]:
    """Keep lines whose leading RFC 3339 timestamp is recent; lines without one follow the last stamped line."""
    cutoff = time.time() - seconds
    kept, keep = [], True
    for line in lines:
        stamp = re.match(r"^\[?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})", line)
        if stamp:
            keep = time.mktime(time.strptime(stamp[1], "%Y-%m-%dT%H:%M:%S")) - time.timezone >= cutoff
        if keep:
            kept.append(line)
    return kept


def invalid_options(detail: str) -> ApiError:
    field_name, _unused, message = detail.partition(": ")
    return ApiError(422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {detail}',
                    {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": message, "field": field_name}]})


def container_status(container: dict, now: str) -> dict:
    image = container.get("image", "")
    registry_host = image.split("/")[0] if "/" in image else ""
    full_image = image if "." in registry_host else f"docker.io/{image}" if registry_host else f"docker.io/library/{image}"
    if ":" not in full_image.rsplit("/", 1)[-1]:
        full_image += ":latest"
    digest = hashlib.sha256(image.encode()).hexdigest()
    return {"name": container["name"], "ready": True, "restartCount": 0, "started": True, "image": full_image,
            "imageID": f"{full_image.rsplit(':', 1)[0]}@sha256:{digest}", "containerID": f"containerd://{secrets.token_hex(32)}",
            "state": {"running": {"startedAt": now}}, "lastState": {}}


# ---- the aiohttp application ------------------------------------------------------------------------------

def build_app(cluster: Cluster) -> web.Application:
    server = ApiServer(cluster)

    @web.middleware
    async def pipeline(request: web.Request, handler):
        started = time.time()
        request["audit"] = {"time": now_rfc3339(), "cluster": cluster.name, "method": request.method, "path": request.path,
                            "verb": "", "resource": "", "namespace": "", "name": "", "user": "", "dry_run": False,
                            "user_agent": request.headers.get("User-Agent", "")}
        faults = cluster.faults
        code = 500
        try:
            if request.path.startswith("/_lab/"):
                response = await handler(request)
                code = response.status
                return response
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.take("drop", request.method, request.path):
                request["audit"]["fault"] = "drop"
                code = 0
                request.transport.abort()
                return web.Response(status=500)
            if faults.take("throttle", request.method, request.path):
                request["audit"]["fault"] = "throttle"
                raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                               {"causes": [{"message": "client rate limited"}], "retryAfterSeconds": faults.retry_after},
                               {"Retry-After": str(faults.retry_after)})
            if faults.take("errors", request.method, request.path):
                request["audit"]["fault"] = "error"
                raise ApiError(faults.error_code, "InternalError", "Internal error occurred: injected by the lab scenario",
                               {"causes": [{"message": "injected by the lab scenario"}]})
            response = await handler(request)
            code = response.status
            if faults.take("drop_after_write", request.method, request.path):
                # The request took effect (audited with its real code); only its answer is lost.
                request["audit"]["fault"] = "drop_after_write"
                request.transport.abort()
            return response
        except ApiError as error:
            code = error.code
            return json_response(error.status(), error.code, error.headers)
        except web.HTTPException as error:
            code = error.status
            raise
        finally:
            request["audit"]["code"] = code
            request["audit"]["latency_ms"] = round((time.time() - started) * 1000, 2)
            if not request.path.startswith("/_lab/"):
                cluster.audit(request["audit"])

    async def entry(request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return web.Response(text="ok")
        identity = cluster.authenticator.identify(request.headers.get("Authorization"))
        if identity is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        request["audit"]["user"] = identity.user
        if parts == ["version"]:
            return json_response(server.version_info())
        if parts[:2] == ["openapi", "v3"]:
            request["audit"].update(verb="get", resource="openapi")
            return json_response(server.openapi_v3(parts[2:]))
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if parts[0] == "api":
            group, version, rest = "", parts[1] if len(parts) > 1 else "", parts[2:]
        else:
            group, version, rest = (parts[1] if len(parts) > 1 else ""), (parts[2] if len(parts) > 2 else ""), parts[3:]
        if not rest:
            request["audit"].update(verb="get", resource="discovery")
            if request.method != "GET":
                raise method_not_allowed()
            return server.discovery(request, parts)
        return await server.handle_resource(request, identity, parse_target(cluster, group, version, rest))

    async def lab_faults(request: web.Request) -> web.Response:
        """Test control: replace the fault set at run time (admin token only)."""
        if request.headers.get("Authorization") != f"Bearer {cluster.admin_token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        try:
            cluster.faults = Faults.from_spec(await read_body(request))
        except (TypeError, ValueError) as error:
            raise bad_request(f"invalid fault set: {error}") from error
        return json_response({"faults": cluster.faults.__dict__})

    app = web.Application(middlewares=[pipeline], client_max_size=32 * 1024 * 1024)
    app["cluster"] = cluster
    app["server"] = server
    app.router.add_put("/_lab/faults", lab_faults)
    app.router.add_route("*", "/{tail:.*}", entry)
    return app

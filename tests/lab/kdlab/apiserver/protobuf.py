"""Decodes the Kubernetes protobuf request bodies kubectl 1.32+ typed commands send (`create configmap|namespace|secret`,
`auth can-i`): the `k8s\\x00` magic, the runtime.Unknown envelope, and the few object types below, into the JSON dicts the
rest of the server handles. Field numbers are those of k8s.io/api and k8s.io/apimachinery's generated.proto. Like JSON's
omitempty, empty strings, zero numbers, false and empty messages are left out (gogo-protobuf writes them all).
"""

import base64
import datetime

MAGIC = b"k8s\x00"
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

# message -> {field number: (JSON name, type, repeated)}; a type is a scalar name, "map:<value type>" or another message.
SCHEMAS = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "raw", False), 3: ("contentEncoding", "string", False),
                4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {1: ("name", "string", False), 2: ("generateName", "string", False), 3: ("namespace", "string", False),
                   4: ("selfLink", "string", False), 5: ("uid", "string", False), 6: ("resourceVersion", "string", False),
                   7: ("generation", "int", False), 8: ("creationTimestamp", "Time", False), 9: ("deletionTimestamp", "Time", False),
                   10: ("deletionGracePeriodSeconds", "int", False), 11: ("labels", "map:string", False),
                   12: ("annotations", "map:string", False), 13: ("ownerReferences", "OwnerReference", True),
                   14: ("finalizers", "string", True)},
    "OwnerReference": {1: ("kind", "string", False), 3: ("name", "string", False), 4: ("uid", "string", False),
                       5: ("apiVersion", "string", False), 6: ("controller", "bool", False), 7: ("blockOwnerDeletion", "bool", False)},
    "Time": {1: ("seconds", "int", False), 2: ("nanos", "int", False)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:string", False), 3: ("binaryData", "map:bytes", False),
                  4: ("immutable", "bool", False)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:bytes", False), 3: ("type", "string", False),
               4: ("stringData", "map:string", False), 5: ("immutable", "bool", False)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "SelfSubjectAccessReviewSpec", False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "ResourceAttributes": {1: ("namespace", "string", False), 2: ("verb", "string", False), 3: ("group", "string", False),
                           4: ("version", "string", False), 5: ("resource", "string", False), 6: ("subresource", "string", False),
                           7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
}
# (apiVersion, kind) of the envelope -> the message its raw bytes hold
KINDS = {("v1", "ConfigMap"): "ConfigMap", ("v1", "Secret"): "Secret", ("v1", "Namespace"): "Namespace",
         ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview"}


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object this server decodes; the message says which and why."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def fields(data: bytes):
    """(field number, wire type, value) for each field of one message: ints for varints, bytes otherwise."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, position = _varint(data, position)
        elif wire == LENGTH:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
            if len(value) != length:
                raise ProtobufError("truncated length-delimited field")
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            value, position = data[position:position + size], position + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _scalar(kind: str, wire: int, value):
    if kind == "string":
        return value.decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")    # JSON carries []byte as base64
    if kind == "raw":
        return value
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return value - (1 << 64) if value >= 1 << 63 else value
    raise ProtobufError(f"unknown scalar type {kind} (wire type {wire})")


def decode_message(name: str, data: bytes):
    schema = SCHEMAS[name]
    result: dict = {}
    for number, wire, value in fields(data):
        if number not in schema:
            continue     # a field newer than this table: ignored, as an older server would
        key, kind, repeated = schema[number]
        if kind.startswith("map:"):
            entry = dict((n, v) for n, _wire, v in fields(value))
            result.setdefault(key, {})[entry.get(1, b"").decode("utf-8")] = _scalar(kind[4:], LENGTH, entry.get(2, b""))
            continue
        decoded = decode_message(kind, value) if kind in SCHEMAS else _scalar(kind, wire, value)
        if repeated:
            result.setdefault(key, []).append(decoded)
        else:
            result[key] = decoded
    if name == "Time":
        if not result.get("seconds"):
            return None
        return datetime.datetime.fromtimestamp(result["seconds"], datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {k: v for k, v in result.items() if v not in ("", 0, False, None, {}, [])}


def decode_object(body: bytes) -> dict:
    """A JSON-shaped object from a protobuf request body (magic + runtime.Unknown). ProtobufError for what it cannot decode."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic k8s\\x00")
    envelope = decode_message("Unknown", body[len(MAGIC):])
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"content encoding {envelope['contentEncoding']!r} is not supported")
    message = KINDS.get((api_version, kind))
    if message is None:
        known = ", ".join(f"{k} ({v})" for v, k in KINDS)
        raise ProtobufError(f"the lab API server decodes protobuf bodies of {known} only, not {kind or '?'} ({api_version or '?'}); "
                            f"send JSON (kubectl apply -f, kubectl 1.30/1.31, or the Python client)")
    return {"apiVersion": api_version, "kind": kind, **decode_message(message, envelope.get("raw", b""))}

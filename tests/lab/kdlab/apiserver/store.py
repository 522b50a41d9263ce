"""The object store of one cluster: objects by (group, plural, namespace, name), a resourceVersion counter,
a bounded event history for watch resumption, and subscribers (watch streams, the data plane)."""

import asyncio
import copy
import datetime
import uuid
from collections import deque
from dataclasses import dataclass

from .resources import ResourceType

HISTORY_LENGTH = 2000


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    group: str
    plural: str
    obj: dict


class ResourceVersionTooOld(Exception):
    pass


class Store:
    def __init__(self):
        self.objects: dict[tuple[str, str, str, str], dict] = {}
        self.resource_version = 1000
        self.history: deque[WatchEvent] = deque(maxlen=HISTORY_LENGTH)
        self._subscribers: set[asyncio.Queue] = set()
        self.listeners: list = []  # callables(event) run on every committed change (the data plane)

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, namespace if rt.namespaced else "", name)

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict | None:
        return self.objects.get(self.key(rt, namespace, name))

    def list_of(self, rt: ResourceType, namespace: str | None) -> list[dict]:
        found = [obj for (group, plural, ns, _unused), obj in self.objects.items()
                 if group == rt.group and plural == rt.plural and (not namespace or ns == namespace)]
        return sorted(found, key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def next_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def _commit(self, event_type: str, rt: ResourceType, obj: dict) -> None:
        event = WatchEvent(int(obj["metadata"]["resourceVersion"]), event_type, rt.group, rt.plural, copy.deepcopy(obj))
        self.history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)
        for listener in self.listeners:
            listener(event)

    def create(self, rt: ResourceType, obj: dict) -> dict:
        metadata = obj["metadata"]
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", now_rfc3339())
        metadata["resourceVersion"] = str(self.next_version())
        metadata.setdefault("generation", 1)
        self.objects[self.key(rt, metadata.get("namespace", ""), metadata["name"])] = obj
        self._commit("ADDED", rt, obj)
        return obj

    def replace(self, rt: ResourceType, obj: dict) -> dict:
        metadata = obj["metadata"]
        metadata["resourceVersion"] = str(self.next_version())
        self.objects[self.key(rt, metadata.get("namespace", ""), metadata["name"])] = obj
        self._commit("MODIFIED", rt, obj)
        return obj

    def delete(self, rt: ResourceType, namespace: str, name: str) -> dict | None:
        obj = self.objects.pop(self.key(rt, namespace, name), None)
        if obj is not None:
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.next_version())
            self._commit("DELETED", rt, obj)
        return obj

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    def events_since(self, resource_version: int) -> list[WatchEvent]:
        if self.history and resource_version < self.history[0].resource_version - 1:
            raise ResourceVersionTooOld(f"too old resource version: {resource_version} ({self.history[0].resource_version - 1})")
        return [event for event in self.history if event.resource_version > resource_version]

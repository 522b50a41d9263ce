"""The lab's journal: every thing `up` creates is recorded here BEFORE it is created, so `down` can undo a half-done `up`."""

import contextlib
import json
import os
import threading

STATE_FILE = ".kdlab-state.jsonl"


class Journal:
    """Append-only JSON lines in <lab dir>/.kdlab-state.jsonl; each line is {"kind": ..., ...}."""

    def __init__(self, lab_dir: str):
        self.path = os.path.join(lab_dir, STATE_FILE)
        self.lock = threading.Lock()     # clusters are built in parallel threads

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def record(self, kind: str, **details) -> None:
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, **details}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def entries(self) -> list[dict]:
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue   # a line cut short by a crash: the namespace-prefix sweep in `down` still finds what it named
        return entries

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

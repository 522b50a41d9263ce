"""The lab: real networks in Linux network namespaces that reproduce pod egress failures (see docs/lab.md)."""

from kdlab.errors import ExecNotFound, LabError
from kdlab.lab import Lab

__all__ = ["ExecNotFound", "Lab", "LabError"]

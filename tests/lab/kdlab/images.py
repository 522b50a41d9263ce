"""Container image tool sets: a per-pod bin dir of symlinks to real Debian binaries, alone on PATH."""

import contextlib
import functools
import os
import shutil

from kdlab.errors import LabError

NETSHOOT_TOOLS = ("bash", "sh", "curl", "dig", "nslookup", "ping", "nc", "openssl", "ip", "tracepath", "timeout", "cat", "env",
                  "ls", "grep", "sed", "awk", "head", "tr", "wc", "sleep", "date", "kill")
BUSYBOX_APPLETS = ("sh", "nslookup", "wget", "nc", "ping", "cat", "env", "ls", "grep", "sed", "awk", "head", "tr", "wc", "sleep",
                   "timeout", "date", "kill")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = "/bin/busybox"
IMAGE_NAMES = ("netshoot", "busybox", "distroless", "coredns")


@functools.cache
def tool_targets(image: str) -> dict[str, str]:
    """Tool name -> the real file it runs. Alternatives (/etc/alternatives/...) are resolved now so the pod never needs /etc."""
    if image == "netshoot":
        targets = {}
        for tool in NETSHOOT_TOOLS:
            found = shutil.which(tool, path=HOST_PATH)
            if found is None:
                raise LabError(f"the netshoot image needs {tool!r} on this machine; install it (see tests/lab/apt-packages.txt)")
            targets[tool] = os.path.realpath(found)
        return targets
    if image == "busybox":
        if not os.path.exists(BUSYBOX):
            raise LabError("the busybox image needs /bin/busybox; apt-get install busybox")
        return dict.fromkeys(BUSYBOX_APPLETS, BUSYBOX)
    return {}   # distroless and coredns: nothing to run


def make_bin_dir(bin_dir: str, image: str) -> None:
    os.makedirs(bin_dir, exist_ok=True)
    for tool, target in tool_targets(image).items():
        with contextlib.suppress(FileExistsError):     # two callers making a shared tool dir at once
            os.symlink(target, os.path.join(bin_dir, tool))


def image_of(reference: str) -> str:
    """The lab tool set for a container image reference: nicolaka/netshoot -> netshoot, busybox* -> busybox,
    gcr.io/distroless/* -> distroless, CoreDNS -> coredns, anything else -> netshoot (a general-purpose image)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1].split(":", 1)[0]
    if "/distroless/" in f"/{name}":
        return "distroless"
    if last.startswith("busybox"):
        return "busybox"
    if last == "coredns":
        return "coredns"
    return "netshoot"

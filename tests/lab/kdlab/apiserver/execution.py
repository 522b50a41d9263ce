"""`pods/exec` over websocket (v4/v5 channel protocols) and the runtimes that start the processes.

A runtime starts argv "in a container": `HostRuntime` on this host (standalone tests); the lab plugin's runtime in the
lab pod's network namespace through the lab's own exec path. The PATH is what the image holds: a distroless pod has
none, so `curl` fails exactly as runc reports it.
"""

import asyncio
import contextlib
import json
import os
import secrets
import shutil

from aiohttp import WSMsgType, web

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


class ExecutableNotFound(Exception):
    """argv[0] is not in the container image; the message is runc's."""


def runc_not_found_message(command: str) -> str:
    cause = f"stat {command}: no such file or directory" if "/" in command else "executable file not found in $PATH"
    return f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{command}": {cause}: unknown'


def resolve_executable(command: str, path: str) -> str:
    """The file the container would run: a bare name through PATH, an absolute path by its name in the image."""
    found = shutil.which(os.path.basename(command) if "/" in command else command, path=path) if command else None
    if not found:
        raise ExecutableNotFound(runc_not_found_message(command))
    return found


def is_debug_container(pod: dict, container: str) -> bool:
    """Ephemeral containers and hostNetwork debug pods run the netshoot tool set."""
    spec = pod.get("spec") or {}
    return container in {c.get("name") for c in spec.get("ephemeralContainers") or []} or bool(spec.get("hostNetwork"))


def container_env(pod: dict, container: str) -> dict[str, str]:
    spec = pod.get("spec") or {}
    return {e["name"]: e["value"] for c in (spec.get("containers") or []) + (spec.get("ephemeralContainers") or [])
            if c.get("name") == container for e in c.get("env") or [] if "value" in e}


class HostRuntime:
    """Runs the argv on this host with the image's PATH (standalone API server, no lab network).

    `paths` maps "ns/pod" or "ns/pod/container" to a PATH; other pods get `default_path`, debug containers `debug_path`.
    """

    def __init__(self, default_path: str = HOST_PATH, debug_path: str = HOST_PATH, paths: dict | None = None):
        self.default_path, self.debug_path, self.paths = default_path, debug_path, paths or {}

    def command(self, pod: dict, container: str, argv: list[str]) -> tuple[list[str], dict | None]:
        ref = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        path = self.debug_path if is_debug_container(pod, container) else (
            self.paths.get(f"{ref}/{container}", self.paths.get(ref, self.default_path)))
        executable = resolve_executable(argv[0], path)
        env = {"PATH": path, "HOME": "/root", **container_env(pod, container)}
        return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), executable, *argv[1:]], None

    async def exec(self, pod: dict, container: str, argv: list[str], stdin: bool) -> asyncio.subprocess.Process:
        command, env = self.command(pod, container, argv)
        return await asyncio.create_subprocess_exec(
            *command, env=env, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True, cwd="/")


def exec_status(exit_code: int, argv: list[str]) -> dict:
    if exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: command '{' '.join(argv)}' exited with {exit_code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}}


def internal_error_status(cause: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {cause}", "reason": "InternalError",
            "details": {"causes": [{"message": cause}]}, "code": 500}


async def _send(ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
    if not ws.closed:
        await ws.send_bytes(bytes([channel]) + data)


async def _pump(ws: web.WebSocketResponse, channel: int, reader: asyncio.StreamReader) -> None:
    while chunk := await reader.read(65536):
        await _send(ws, channel, chunk)


async def _feed_stdin(ws: web.WebSocketResponse, process: asyncio.subprocess.Process, protocol: str) -> None:
    """Client frames: stdin data (0), resize (4, ignored), v5 close (255 + channel)."""
    async for message in ws:
        # The Python client sends str data as text frames ("\x00" + text); kubectl sends binary frames.
        data = message.data.encode() if message.type == WSMsgType.TEXT else message.data if message.type == WSMsgType.BINARY else b""
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN and process.stdin and not process.stdin.is_closing():
            process.stdin.write(payload)
            await process.stdin.drain()
        elif channel == CLOSE and protocol.startswith("v5") and payload[:1] == bytes([STDIN]) and process.stdin:
            process.stdin.close()
    if process.returncode is None:  # the client went away: stop what it started
        process.kill()


async def serve_exec(request: web.Request, runtime: HostRuntime, pod: dict, container: str, argv: list[str], options: dict,
                     runtime_flavor: str) -> web.WebSocketResponse:
    """Upgrade, run, stream, and end with the kubelet's status on the error channel."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, max_msg_size=0)
    await ws.prepare(request)
    protocol = ws.ws_protocol or ""
    try:
        process = await runtime.exec(pod, container, argv, stdin=options["stdin"])
    except ExecutableNotFound as missing:
        if runtime_flavor == "docker":  # dockershim/cri-dockerd: runc's message on stdout, exit code 126
            await _send(ws, STDOUT, f"{missing}\r\n".encode())
            await _send(ws, ERROR, json.dumps(exec_status(126, argv)).encode())
        else:  # containerd: the CRI exec fails, the kubelet reports an InternalError
            cause = f'error executing command in container: failed to exec in container: failed to start exec "{secrets.token_hex(32)}": {missing}'
            await _send(ws, ERROR, json.dumps(internal_error_status(cause)).encode())
        await ws.close()
        return ws
    feeder = asyncio.create_task(_feed_stdin(ws, process, protocol))
    pumps = [_pump(ws, STDOUT, process.stdout)]
    # With a TTY the kubelet merges stderr into stdout: there is one stream.
    pumps.append(_pump(ws, STDOUT if options["tty"] else STDERR, process.stderr))
    try:
        await asyncio.gather(*pumps)
        exit_code = await process.wait()
        exit_code = 128 - exit_code if exit_code < 0 else exit_code
        await _send(ws, ERROR, json.dumps(exec_status(exit_code, argv)).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        if process.returncode is None:
            process.kill()
        raise
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await ws.close()
    return ws

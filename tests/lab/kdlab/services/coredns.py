"""A CoreDNS stand-in for the lab's kube-system/coredns pod: reads a real Corefile (errors, log, kubernetes, forward;
other plugins are accepted and ignored), re-reads it when it changes (like the reload plugin), answers the cluster
zone for known services, forwards the rest, and logs like CoreDNS so `kubectl logs` shows what a real one would.

Run as `python -m kdlab.services.coredns <config.json>` inside the coredns pod's namespace."""

import asyncio
import hashlib
import json
import os
import random
import socket
import sys

from dnslib import QTYPE, RCODE, RR, SOA, A, DNSRecord

from kdlab.services.dnsutil import serve_dns, write_ready

RELOAD_INTERVAL = 0.5
UPSTREAM_TIMEOUT = 2.0
KNOWN_PLUGINS = {"errors", "log", "health", "ready", "kubernetes", "forward", "cache", "loop", "reload", "loadbalance",
                 "prometheus", "hosts", "rewrite", "template", "bind", "debug", "whoami"}


class CorefileError(ValueError):
    pass


def parse_corefile(text: str, resolv_conf: str = "/etc/resolv.conf") -> dict:
    """The subset of a Corefile the lab acts on: {errors, log, kubernetes_zones, forwards: [(zone, [(ip, port)])]}."""
    tokens_by_line = [line.split("#", 1)[0].split() for line in text.splitlines()]
    config = {"errors": False, "log": False, "kubernetes_zones": [], "forwards": []}
    depth, server_blocks = 0, 0
    for tokens in tokens_by_line:
        if not tokens:
            continue
        if depth == 0:
            if tokens[-1] != "{":
                raise CorefileError(f"expected a server block like '.:53 {{', got {' '.join(tokens)!r}")
            server_blocks += 1
            depth = 1
            continue
        if tokens == ["}"]:
            depth -= 1
            continue
        opens = tokens[-1] == "{"
        if depth == 1:
            plugin, args = tokens[0], [t for t in tokens[1:] if t != "{"]
            if plugin not in KNOWN_PLUGINS:
                raise CorefileError(f"Unknown directive '{plugin}'")
            if plugin in ("errors", "log"):
                config[plugin] = True
            elif plugin == "kubernetes":
                config["kubernetes_zones"] = [z.rstrip(".") + "." for z in args] or ["cluster.local."]
            elif plugin == "forward":
                if len(args) < 2:
                    raise CorefileError("forward needs a zone and at least one upstream")
                config["forwards"].append((args[0].rstrip(".") + "." if args[0] != "." else ".", _upstreams(args[1:], resolv_conf)))
        if opens:
            depth += 1
    if depth != 0 or server_blocks == 0:
        raise CorefileError("unbalanced braces or no server block")
    return config


def _upstreams(args: list[str], resolv_conf: str) -> list[tuple[str, int]]:
    upstreams = []
    for arg in args:
        if arg.startswith("/"):
            try:
                with open(arg, encoding="utf-8") as f:
                    upstreams += [(line.split()[1], 53) for line in f if line.startswith("nameserver") and len(line.split()) > 1]
            except OSError as e:
                raise CorefileError(f"cannot read {arg}: {e.strerror}") from None
            continue
        address = arg.removeprefix("dns://")
        host, _unused, port = address.partition(":") if address.count(":") == 1 else (address, "", "")
        try:
            socket.inet_aton(host)
            upstreams.append((host, int(port or 53)))
        except (OSError, ValueError):
            raise CorefileError(f"not an upstream address: {arg!r}") from None
    if not upstreams:
        raise CorefileError(f"no upstream found in {' '.join(args)} (looked in {resolv_conf})")
    return upstreams


class CoreDNS:
    def __init__(self, config: dict):
        self.settings = config
        self.services = {name.lower(): ip for name, ip in config["services"].items()}
        self.logfile = open(config["log_path"], "a", buffering=1, encoding="utf-8")   # noqa: SIM115 - open for the process lifetime
        self.corefile_mtime = None
        self.listeners: list = []
        self.config = {"errors": True, "log": False, "kubernetes_zones": ["cluster.local."], "forwards": []}

    def log(self, line: str) -> None:
        self.logfile.write(line + "\n")

    def reload(self) -> None:
        try:
            mtime = os.stat(self.settings["corefile"]).st_mtime_ns
        except OSError:
            return
        if mtime == self.corefile_mtime:
            return
        first = self.corefile_mtime is None
        self.corefile_mtime = mtime
        with open(self.settings["corefile"], encoding="utf-8") as f:
            text = f.read()
        try:
            self.config = parse_corefile(text)
        except CorefileError as e:
            self.log(f"[ERROR] Restart failed: {self.settings['corefile']}: {e}")
            return
        digest = hashlib.sha512(text.encode()).hexdigest()
        if not first:
            self.log("[INFO] Reloading")
        self.log(f"[INFO] plugin/reload: Running configuration SHA512 = {digest}")
        if not first:
            self.log("[INFO] Reloading complete")

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            self.reload()

    async def answer(self, data: bytes, client: tuple[str, int], transport: str) -> bytes | None:
        query = DNSRecord.parse(data)
        qname, qtype = str(query.q.qname).lower(), QTYPE[query.q.qtype]
        loop = asyncio.get_running_loop()
        started = loop.time()
        zone = next((z for z in self.config["kubernetes_zones"] if qname == z or qname.endswith("." + z)), None)
        if zone is not None:
            reply = query.reply(aa=True)
            if qname in self.services and query.q.qtype == QTYPE.A:
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(self.services[qname]), ttl=5))
            else:
                if qname not in self.services:
                    reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(RR(zone, QTYPE.SOA, ttl=5, rdata=SOA(f"ns.dns.{zone}", f"hostmaster.{zone}", (1, 7200, 1800, 86400, 5))))
            packed = reply.pack()
        else:
            packed = await self.forward(query, qname, qtype)
        if self.config["log"]:
            rcode = RCODE[DNSRecord.parse(packed).header.rcode]
            self.log(f'[INFO] {client[0]}:{client[1]} - {query.header.id} "{qtype} IN {qname} {transport} {len(data)} false 512" '
                     f"{rcode} qr,rd,ra {len(packed)} {loop.time() - started:.9f}s")
        return packed

    async def forward(self, query: DNSRecord, qname: str, qtype: str) -> bytes:
        matches = [(zone, ups) for zone, ups in self.config["forwards"] if zone == "." or qname == zone or qname.endswith("." + zone)]
        if not matches:
            reply = query.reply()
            reply.header.rcode = RCODE.REFUSED
            return reply.pack()
        _unused, upstreams = max(matches, key=lambda m: len(m[0]))
        upstream = random.choice(upstreams)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        local = ("0.0.0.0", 0)
        try:
            sock.connect(upstream)
            local = sock.getsockname()
            await loop.sock_sendall(sock, query.pack())
            return await asyncio.wait_for(loop.sock_recv(sock, 65535), UPSTREAM_TIMEOUT)
        except (TimeoutError, OSError) as e:
            reason = "i/o timeout" if isinstance(e, asyncio.TimeoutError) else (e.strerror or str(e)).lower()
            if self.config["errors"]:
                self.log(f"[ERROR] plugin/errors: 2 {qname} {qtype}: read udp {local[0]}:{local[1]}->{upstream[0]}:{upstream[1]}: {reason}")
            reply = query.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        finally:
            sock.close()

    async def run(self) -> None:
        self.log(".:53\nCoreDNS-1.11.1\nlinux/amd64, go1.21.1, ae2bbc2")
        self.reload()
        self.listeners = await serve_dns(self.settings["listen_ip"], 53, self.answer)
        write_ready(self.settings["ready_file"])
        await self.watch()


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    asyncio.run(CoreDNS(config).run())


if __name__ == "__main__":
    main()

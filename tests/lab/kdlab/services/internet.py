"""The lab's internet, one asyncio process in the internet namespace: DNS (authoritative + public resolver), HTTP/HTTPS
endpoints and their variants, a UDP echo, an egress-IP echo, an allow-listed endpoint and an HTTP CONNECT proxy.

Run as `python -m kdlab.services.internet <config.json>` (the lab does it, inside the namespace)."""

import asyncio
import json
import ssl
import sys
import time

from dnslib import QTYPE, RCODE, RR, SOA, A, DNSRecord

from kdlab.services.dnsutil import serve_dns, write_ready

MAX_HEAD = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 502: "Bad Gateway"}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


class Internet:
    def __init__(self, config: dict):
        self.config = config
        self.records: dict[str, str] = config["records"]
        self.zone = config["zone"] + "."
        self.allowlist = set(config["allowlist"])
        self.large_body = b"x" * (config["large_response_bytes"] - 1) + b"\n"
        self.contexts: dict[str, ssl.SSLContext] = {}
        for kind, path in config["certificates"].items():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(path)
            self.contexts[kind] = context

    # DNS: the authoritative server sets AA, the public resolver sets RA; both answer the same lab names.
    def dns_answer(self, authoritative: bool):
        async def answer(data: bytes, client, transport) -> bytes:
            query = DNSRecord.parse(data)
            reply = query.reply(ra=not authoritative, aa=authoritative)
            qname = str(query.q.qname).lower()
            in_zone = qname == self.zone or qname.endswith("." + self.zone)
            if not in_zone:
                reply.header.rcode = RCODE.REFUSED if authoritative else RCODE.NXDOMAIN
            elif qname in self.records and query.q.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(self.records[qname]), ttl=60))
            else:
                if qname not in self.records and qname != self.zone:
                    reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(RR(self.zone, QTYPE.SOA, ttl=60, rdata=SOA(f"ns.{self.zone}", f"hostmaster.{self.zone}", (1, 3600, 600, 86400, 60))))
            return reply.pack()
        return answer

    # HTTP
    def http_handler(self, endpoint: dict):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            peer = writer.get_extra_info("peername")[0]
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                method, target, _unused = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                if endpoint["serves"] == "proxy":
                    await self.proxy(method, target, head, reader, writer, peer)
                    return
                status, body = self.respond(endpoint, target, peer)
                log(f'{endpoint["host"]} {peer} "{method} {target}" {status} {len(body)}')
                self.write_response(writer, status, b"" if method == "HEAD" else body, len(body))
                await writer.drain()
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()
        return handle

    def respond(self, endpoint: dict, target: str, peer: str) -> tuple[int, bytes]:
        path = target.split("?", 1)[0]
        if endpoint["serves"] == "whoami":
            return 200, peer.encode()       # like ifconfig.me: the caller's address, no newline
        if endpoint["serves"] == "allowlist" and peer not in self.allowlist:
            return 403, f"forbidden: source address {peer} is not on the allow-list of {endpoint['host']}\n".encode()
        if path == "/health":
            return 200, json.dumps({"status": "ok", "host": endpoint["host"]}).encode() + b"\n"
        if path == "/large-response":
            return 200, self.large_body
        if path == "/":
            return 200, f"hello from {endpoint['host']}\n".encode()
        return 404, b"not found\n"

    @staticmethod
    def write_response(writer: asyncio.StreamWriter, status: int, body: bytes, length: int) -> None:
        head = f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)

    async def proxy(self, method: str, target: str, head: bytes, reader, writer, peer: str) -> None:
        if method == "CONNECT":
            host, _unused, port = target.rpartition(":")
            upstream_target, forward = (host, int(port)), b""
        elif target.startswith("http://"):
            rest = target[len("http://"):]
            hostport, _unused, path = rest.partition("/")
            host, _unused, port = hostport.partition(":")
            headers = head.split(b"\r\n", 1)[1]
            upstream_target = (host, int(port or 80))
            forward = f"{method} /{path} HTTP/1.1\r\n".encode() + headers
        else:
            body = b"proxy: expected CONNECT or an absolute http:// URL\n"
            self.write_response(writer, 400, body, len(body))
            return
        ip = self.records.get(upstream_target[0].lower().rstrip(".") + ".")
        log(f"proxy {peer} {method} {target} -> {ip}")
        try:
            if ip is None:
                raise OSError("unknown host")
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(ip, upstream_target[1]), 5)
        except (TimeoutError, OSError):
            body = f"proxy: cannot connect to {target}\n".encode()
            self.write_response(writer, 502, body, len(body))
            await writer.drain()
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(forward)
        await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))

    @staticmethod
    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            sink.close()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: None)   # failed client handshakes are the point of some endpoints
        keep = []
        down = set(self.config["down_hosts"])
        for endpoint in self.config["endpoints"]:
            if endpoint["host"] in down or endpoint["serves"] == "none":
                continue
            if endpoint["serves"] == "dns":
                keep += await serve_dns(endpoint["ip"], 53, self.dns_answer(authoritative=endpoint["ip"] == self.config["authoritative_ip"]))
                continue
            if endpoint["serves"] == "udp_echo" or endpoint["udp_ports"]:
                for port in endpoint["udp_ports"]:
                    transport, _unused = await loop.create_datagram_endpoint(UdpEcho, local_addr=(endpoint["ip"], port))
                    keep.append(transport)
            for port in endpoint["tcp_ports"]:
                tls = self.contexts.get(endpoint["cert"]) if port in (443, 8443) else None
                keep.append(await asyncio.start_server(self.http_handler(endpoint), endpoint["ip"], port, ssl=tls, limit=MAX_HEAD))
        keep += await serve_dns(self.config["vpc_resolver_ip"], 53, self.dns_answer(authoritative=False))
        write_ready(self.config["ready_file"])
        log(f"internet ready: {len(keep)} listeners")
        await asyncio.Event().wait()


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    asyncio.run(Internet(config).run())


if __name__ == "__main__":
    main()

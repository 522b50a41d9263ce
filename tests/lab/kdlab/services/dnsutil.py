"""DNS plumbing shared by the lab's resolvers: UDP and TCP listeners around one `answer(query_bytes, client) -> bytes`."""

import asyncio
import struct
from collections.abc import Awaitable, Callable

from dnslib import DNSError

Answer = Callable[[bytes, tuple[str, int], str], Awaitable[bytes | None]]


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, answer: Answer):
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        asyncio.get_running_loop().create_task(self._reply(data, addr))

    async def _reply(self, data, addr):
        try:
            reply = await self.answer(data, addr, "udp")
        except DNSError:   # a malformed query: like a real resolver, drop it
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve_dns(ip: str, port: int, answer: Answer) -> list:
    """Binds UDP and TCP on ip:port; returns the servers/transports to keep them alive."""
    loop = asyncio.get_running_loop()
    udp, _unused = await loop.create_datagram_endpoint(lambda: _UdpServer(answer), local_addr=(ip, port))

    async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                reply = await answer(await reader.readexactly(size), peer, "tcp")
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, DNSError):
            pass   # a client that hangs up or sends garbage just loses its connection
        finally:
            writer.close()

    tcp = await asyncio.start_server(tcp_client, ip, port)
    return [udp, tcp]


def write_ready(path: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write("ready\n")

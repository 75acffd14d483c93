"""MTProto's TCP "full" transport, server side: length, sequence number, body, CRC32.

https://core.telegram.org/mtproto/mtproto-transports#full — Telethon's default
`ConnectionTcpFull`. No init bytes; each direction numbers its packets from 0, and a packet
out of sequence or with a wrong CRC ends the connection, as Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from zlib import crc32

MAX_PACKET = 16 * 1024 * 1024  # well above Telegram's own 1 MiB container limit

# Transport errors: the whole body of a packet is a negative int32 (Telegram's "-404" etc.).
AUTH_KEY_NOT_FOUND = -404
TRANSPORT_FLOOD = -429


class TransportError(Exception):
    """The peer broke the framing; the connection must be closed."""


class FullTransport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._recv_seq = 0
        self._send_seq = 0

    async def read(self) -> bytes:
        """The next packet's body; raises IncompleteReadError at EOF, TransportError if bad."""
        header = await self._reader.readexactly(8)
        length, seq = struct.unpack("<ii", header)
        if length < 12 or length > MAX_PACKET:
            raise TransportError(f"bad packet length {length}")
        rest = await self._reader.readexactly(length - 8)
        body, (checksum,) = rest[:-4], struct.unpack("<I", rest[-4:])
        if crc32(header + body) != checksum:
            raise TransportError("CRC32 mismatch")
        if seq != self._recv_seq:
            raise TransportError(f"packet seq {seq}, expected {self._recv_seq}")
        self._recv_seq += 1
        return body

    def write(self, body: bytes) -> None:
        """Queue one packet (synchronously, so packets never interleave); drain() to flush."""
        data = struct.pack("<ii", len(body) + 12, self._send_seq) + body
        self._send_seq += 1
        self._writer.write(data + struct.pack("<I", crc32(data)))

    def write_error(self, code: int) -> None:
        self.write(struct.pack("<i", code))

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

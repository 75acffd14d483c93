"""The loopback MTProto server: TCP, the key exchange, encrypted sessions, RPC dispatch, pushes.

One asyncio task per connection. A packet whose auth_key_id is 0 belongs to the key exchange
(`auth.KeyExchange`); any other is decrypted with the key of that id (unknown key: transport
error -404, as Telegram answers), checked (msg_key, session, salt, msg_id, seq_no parity) and
its messages handled: containers and gzip_packed unwrapped, service messages answered
(ping → pong, get_future_salts, destroy_session, msgs_ack taken), and every RPC wrapped in
invokeWithLayer / initConnection / invokeWithoutUpdates / invokeAfterMsg answered from the
world in rpc_result. The answers to one packet go back in one packet (a msg_container with a
msgs_ack when there is more than one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import TLObject, functions, types
from telethon.tl.core import GzipPacked, MessageContainer
from telethon.tl.tlobject import TLRequest

from tests.support.mtproto import crypto
from tests.support.mtproto.auth import HandshakeError, KeyExchange
from tests.support.mtproto.rpc import (
    HANDLERS,
    NO_LOGIN_NEEDED,
    Call,
    RpcFailError,
    method_name,
    serialize_result,
    unauthorised,
)
from tests.support.mtproto.transport import AUTH_KEY_NOT_FOUND, FullTransport, TransportError
from tests.support.mtproto.world import AuthKeyInfo, ChannelEvent, RpcCall, World, WorldChannel

__all__ = ["MTProtoServer", "Session"]

log = logging.getLogger(__name__)

_MSGS_ACK = types.MsgsAck
_GZIP_ABOVE = 1024  # results longer than this go gzip_packed when that is shorter (as Telegram)
_WRAPPERS = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeWithoutUpdatesRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
)
# bad_msg_notification error codes (https://core.telegram.org/mtproto/service_messages_about_messages)
MSG_ID_TOO_LOW, MSG_ID_TOO_HIGH, MSG_ID_NOT_DIV4 = 16, 17, 18
SEQNO_EVEN_EXPECTED, SEQNO_ODD_EXPECTED = 34, 35
BAD_SALT = 48


@dataclass(slots=True)
class Session:
    """A client session (auth key + session_id); it outlives TCP connections, as Telegram's."""

    key: AuthKeyInfo
    session_id: int
    unique_id: int = field(
        default_factory=lambda: int.from_bytes(os.urandom(8), "little", signed=True)
    )
    last_msg_id: int = 0
    content_sent: int = 0
    no_updates: bool = False
    announced: bool = False  # new_session_created sent

    def new_msg_id(self, *, response: bool) -> int:
        """Server msg_ids: time-based, increasing, ≡ 1 mod 4 for answers and ≡ 3 otherwise."""
        now = time.time()
        candidate = (int(now) << 32) | (int((now % 1) * 2**32) & ~3)
        if candidate <= self.last_msg_id:
            candidate = (self.last_msg_id & ~3) + 4
        candidate |= 1 if response else 3
        self.last_msg_id = candidate
        return candidate

    def seq_no(self, *, content_related: bool) -> int:
        if content_related:
            self.content_sent += 1
            return self.content_sent * 2 - 1
        return self.content_sent * 2


@dataclass(slots=True)
class _Out:
    body: bytes
    content_related: bool = True
    response: bool = True


class _Connection:
    def __init__(self, transport: FullTransport, peer: str) -> None:
        self.transport = transport
        self.peer = peer
        self.session: Session | None = None
        self.exchange: KeyExchange | None = None
        self.closed = False
        self.disconnect_timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        self.closed = True
        if self.disconnect_timer is not None:
            self.disconnect_timer.cancel()
        self.transport.close()


class MTProtoServer(World):
    """`await start()` / `await stop()`, or `async with MTProtoServer() as server`.

    The world API (accounts, channels, posts, faults, the call log) is `World`'s.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: crypto.ServerKey | None = None,
        dc_id: int = 2,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.dc_id = dc_id
        self.key = key or crypto.new_server_key()
        self.key_path: Path | None = None  # where the fixture wrote the public key
        self.internal_errors: list[str] = []  # bugs of the loopback itself; a test asserts none
        self.handshakes = 0
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: dict[tuple[int, int], Session] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.debug("loopback MTProto server on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MTProtoServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        """host:port, the form of TG_SERVER."""
        return f"{self.host}:{self.port}"

    @property
    def public_key_pem(self) -> str:
        return self.key.public_pem.decode("ascii")

    def write_public_key(self, path: Path) -> Path:
        """Write the RSA public key (PKCS#1 PEM) where TG_SERVER_KEY will point."""
        path.write_bytes(self.key.public_pem)
        return path

    def connected_users(self) -> list[int | None]:
        """The account of each open connection (None: not logged in yet)."""
        return [c.session.key.user_id if c.session else None for c in self._connections]

    def drop_connections(self) -> int:
        """Close every client connection (a network blip); clients reconnect by themselves."""
        dropped = list(self._connections)
        for connection in dropped:
            connection.close()
        return len(dropped)

    def forget_key(self, key_id: int) -> None:
        """Forget an auth key entirely: its next packet gets transport error -404."""
        self.auth_keys.pop(key_id, None)
        for session_key in [k for k in self._sessions if k[0] == key_id]:
            del self._sessions[session_key]

    # ------------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = str(writer.get_extra_info("peername"))
        connection = _Connection(FullTransport(reader, writer), peer)
        self._connections.add(connection)
        try:
            while not connection.closed:
                packet = await connection.transport.read()
                await self._on_packet(connection, packet)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except (TransportError, HandshakeError) as exc:
            log.info("closing %s: %s", peer, exc)
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log.exception("loopback MTProto server failed on %s", peer)
            self.internal_errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._connections.discard(connection)
            connection.close()
            with contextlib.suppress(Exception):
                await connection.transport.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    async def _on_packet(self, connection: _Connection, packet: bytes) -> None:
        if len(packet) < 8:
            raise TransportError("packet shorter than an auth_key_id")
        (key_id,) = struct.unpack("<Q", packet[:8])
        if key_id == 0:
            await self._on_plain(connection, packet)
            return
        key = self.auth_keys.get(key_id)
        if key is None:
            connection.transport.write_error(AUTH_KEY_NOT_FOUND)
            await connection.transport.drain()
            connection.close()
            return
        plain = crypto.decrypt_message(key.key, packet)
        if plain is None or len(plain) < 32:
            raise TransportError("msg_key does not match the decrypted message")
        salt, session_id, msg_id, seq_no, length = struct.unpack("<qqqii", plain[:32])
        padding = len(plain) - 32 - length
        if length < 0 or length % 4 or not 12 <= padding <= 1024:
            raise TransportError("bad message length or padding")
        body = plain[32 : 32 + length]
        session = self._session(key, session_id)
        connection.session = session
        out: list[_Out] = []
        bad = self._check_msg_id(msg_id)
        if bad:
            out.append(_bad_msg(msg_id, seq_no, bad))
        elif salt != key.salt:
            out.append(
                _Out(
                    bytes(types.BadServerSalt(msg_id, seq_no, BAD_SALT, key.salt)),
                    content_related=False,
                )
            )
        else:
            if not session.announced:
                session.announced = True
                out.append(
                    _Out(
                        bytes(types.NewSessionCreated(msg_id, session.unique_id, key.salt)),
                        response=False,
                    )
                )
            acks: list[int] = []
            await self._on_message(connection, session, msg_id, seq_no, body, out, acks)
            if acks:
                out.append(_Out(bytes(_MSGS_ACK(acks)), content_related=False))
        if out:
            self._send(connection, session, out)
            await connection.transport.drain()

    async def _on_plain(self, connection: _Connection, packet: bytes) -> None:
        if len(packet) < 20:
            raise TransportError("short plain message")
        _msg_id, length = struct.unpack("<qi", packet[8:20])
        with BinaryReader(packet[20 : 20 + length]) as reader:
            request = reader.tgread_object()
        if connection.exchange is None:
            connection.exchange = KeyExchange(self.key, self._register_key)
        answer = bytes(connection.exchange.handle(request))
        now = time.time()
        reply_id = (int(now) << 32) | (int((now % 1) * 2**32) & ~3) | 1
        connection.transport.write(struct.pack("<qqi", 0, reply_id, len(answer)) + answer)
        await connection.transport.drain()

    def _register_key(self, key: bytes, salt: int) -> None:
        key_id = crypto.auth_key_id(key)
        self.auth_keys[key_id] = AuthKeyInfo(
            key=key, key_id=key_id, salt=salt, created=time.time()
        )
        self.handshakes += 1

    def _session(self, key: AuthKeyInfo, session_id: int) -> Session:
        session = self._sessions.get((key.key_id, session_id))
        if session is None:
            session = self._sessions[(key.key_id, session_id)] = Session(key, session_id)
        return session

    @staticmethod
    def _check_msg_id(msg_id: int) -> int:
        if msg_id % 4:
            return MSG_ID_NOT_DIV4
        delta = (msg_id >> 32) - time.time()
        if delta < -300:
            return MSG_ID_TOO_LOW
        if delta > 30:
            return MSG_ID_TOO_HIGH
        return 0

    # ------------------------------------------------------------------ messages

    async def _on_message(
        self,
        connection: _Connection,
        session: Session,
        msg_id: int,
        seq_no: int,
        body: bytes,
        out: list[_Out],
        acks: list[int],
    ) -> None:
        try:
            with BinaryReader(body) as reader:
                obj = reader.tgread_object()
        except TypeNotFoundError as exc:
            out.append(_rpc_error(msg_id, 400, "INPUT_CONSTRUCTOR_INVALID"))
            self.unimplemented.append(f"constructor {exc.invalid_constructor_id:#010x}")
            return
        await self._on_object(connection, session, msg_id, seq_no, obj, out, acks)

    async def _on_object(
        self,
        connection: _Connection,
        session: Session,
        msg_id: int,
        seq_no: int,
        obj: Any,
        out: list[_Out],
        acks: list[int],
    ) -> None:
        if isinstance(obj, MessageContainer):
            for inner in obj.messages:
                await self._on_object(
                    connection, session, inner.msg_id, inner.seq_no, inner.obj, out, acks
                )
            return
        if isinstance(obj, GzipPacked):
            await self._on_message(connection, session, msg_id, seq_no, obj.data, out, acks)
            return
        content_related = not isinstance(obj, types.MsgsAck)
        if content_related != bool(seq_no % 2):
            out.append(
                _bad_msg(
                    msg_id, seq_no, SEQNO_ODD_EXPECTED if content_related else SEQNO_EVEN_EXPECTED
                )
            )
            return
        if isinstance(obj, types.MsgsAck):
            return
        acks.append(msg_id)
        if isinstance(obj, functions.PingRequest | functions.PingDelayDisconnectRequest):
            out.append(_Out(bytes(types.Pong(msg_id, obj.ping_id))))
            if isinstance(obj, functions.PingDelayDisconnectRequest):
                self._disconnect_later(connection, obj.disconnect_delay)
            return
        if isinstance(obj, functions.GetFutureSaltsRequest):
            out.append(_Out(bytes(self._future_salts(session, msg_id, obj.num))))
            return
        if isinstance(obj, functions.DestroySessionRequest):
            gone = self._sessions.pop((session.key.key_id, obj.session_id), None)
            answer = (types.DestroySessionOk if gone else types.DestroySessionNone)(obj.session_id)
            out.append(_Out(bytes(answer)))
            return
        if isinstance(obj, TLRequest):
            out.append(await self._invoke(session, msg_id, obj))
            return
        log.debug("ignoring %s from %s", type(obj).__name__, connection.peer)

    def _disconnect_later(self, connection: _Connection, delay: int) -> None:
        if connection.disconnect_timer is not None:
            connection.disconnect_timer.cancel()
        connection.disconnect_timer = asyncio.get_running_loop().call_later(
            max(delay, 1), connection.close
        )

    @staticmethod
    def _future_salts(session: Session, msg_id: int, num: int) -> types.FutureSalts:
        now = int(time.time())
        salts = [
            types.FutureSalt(
                valid_since=datetime.fromtimestamp(now + i * 3600, UTC),
                valid_until=datetime.fromtimestamp(now + (i + 1) * 3600, UTC),
                salt=session.key.salt,
            )
            for i in range(max(1, min(num, 64)))
        ]
        return types.FutureSalts(req_msg_id=msg_id, now=now, salts=salts)

    # ------------------------------------------------------------------ RPC

    async def _invoke(self, session: Session, msg_id: int, request: Any) -> _Out:
        key = session.key
        while isinstance(request, _WRAPPERS):
            if isinstance(request, functions.InvokeWithLayerRequest):
                key.layer = request.layer
            elif isinstance(request, functions.InitConnectionRequest):
                key.init = {
                    "api_id": request.api_id,
                    "device_model": request.device_model,
                    "system_version": request.system_version,
                    "app_version": request.app_version,
                    "lang_code": request.lang_code,
                }
            elif isinstance(request, functions.InvokeWithoutUpdatesRequest):
                session.no_updates = True
            request = request.query
        name = method_name(request)
        handler = HANDLERS.get(name)
        error: str | None = None
        try:
            if handler is None:
                self.unimplemented.append(name)
                raise RpcFailError(400, "METHOD_NOT_IMPLEMENTED_BY_LOOPBACK")
            injected = self._injected(name, key.user_id)
            if injected is not None:
                raise RpcFailError(injected.code, injected.message)
            if key.user_id is None and name not in NO_LOGIN_NEEDED:
                raise unauthorised()
            result = handler(Call(self, key, session), request)
            body = serialize_result(result)
        except RpcFailError as fail:
            error = f"{fail.code} {fail.message}"
            out = _rpc_error(msg_id, fail.code, fail.message)
        except Exception as exc:  # a bug of the loopback: answer as Telegram's internal error
            log.exception("loopback MTProto handler %s failed", name)
            self.internal_errors.append(f"{name}: {type(exc).__name__}: {exc}")
            error = "500 INTERNAL"
            out = _rpc_error(msg_id, 500, "INTERNAL")
        else:
            out = _Out(_rpc_result(msg_id, body))
        self.calls.append(RpcCall(key.key_id, key.user_id, name, error, time.time()))
        return out

    # ------------------------------------------------------------------ sending

    def _send(self, connection: _Connection, session: Session, items: list[_Out]) -> None:
        """Encrypt `items` into one packet (a container if several) and queue it."""
        if connection.closed:
            return
        framed: list[tuple[int, int, bytes]] = [
            (
                session.new_msg_id(response=item.response),
                session.seq_no(content_related=item.content_related),
                item.body,
            )
            for item in items
        ]
        if len(framed) == 1:
            msg_id, seq_no, body = framed[0]
        else:
            body = struct.pack("<Ii", MessageContainer.CONSTRUCTOR_ID, len(framed)) + b"".join(
                struct.pack("<qii", i, s, len(b)) + b for i, s, b in framed
            )
            msg_id = session.new_msg_id(response=True)
            seq_no = session.seq_no(content_related=False)
        plain = struct.pack(
            "<qqqii", session.key.salt, session.session_id, msg_id, seq_no, len(body)
        )
        connection.transport.write(
            crypto.encrypt_message(session.key.key, session.key.key_id, plain + body)
        )

    async def _push(self, channel: WorldChannel, event: ChannelEvent) -> None:
        update = self.event_update(channel, event)
        for connection in list(self._connections):
            session = connection.session
            if connection.closed or session is None or session.no_updates:
                continue
            viewer = session.key.user_id
            if viewer is None or viewer not in channel.participants:
                continue
            updates = types.Updates(
                updates=[update],
                users=[],
                chats=[channel.to_tl(viewer=viewer)],
                date=datetime.fromtimestamp(int(time.time()), UTC),
                seq=0,
            )
            self._send(connection, session, [_Out(bytes(updates), response=False)])
            with contextlib.suppress(ConnectionError, OSError):
                await connection.transport.drain()


def _rpc_result(msg_id: int, result: bytes) -> bytes:
    if len(result) > _GZIP_ABOVE:
        packed = struct.pack("<I", GzipPacked.CONSTRUCTOR_ID) + TLObject.serialize_bytes(
            gzip.compress(result)
        )
        if len(packed) < len(result):
            result = packed
    return struct.pack("<Iq", 0xF35C6D01, msg_id) + result


def _rpc_error(msg_id: int, code: int, message: str) -> _Out:
    return _Out(_rpc_result(msg_id, bytes(types.RpcError(code, message))))


def _bad_msg(msg_id: int, seq_no: int, code: int) -> _Out:
    return _Out(bytes(types.BadMsgNotification(msg_id, seq_no, code)), content_related=False)

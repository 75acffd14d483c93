"""The auth key exchange, server side (https://core.telegram.org/mtproto/auth_key).

req_pq_multi → resPQ (a 63-bit pq of two 31-bit primes, the server key's fingerprint);
req_DH_params → server_DH_params_ok (Telegram's 2048-bit prime, g = 3, g_a); set_client_DH_params
→ dh_gen_ok. Each step checks what Telegram checks (nonces, p and q, the fingerprint, SHA1 of the
inner data, the range of g_b); any failure ends the connection, as Telegram does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import rsa.prime
from telethon.crypto import AES
from telethon.extensions import BinaryReader
from telethon.tl import TLObject, functions, types

from tests.support.mtproto import crypto


class HandshakeError(Exception):
    """The client broke the key exchange; the connection is closed."""


@dataclass(slots=True)
class _State:
    nonce: int
    server_nonce: int
    p: int
    q: int
    new_nonce: int | None = None
    a: int | None = None
    tmp_key: bytes = b""
    tmp_iv: bytes = b""


def _int128() -> int:
    return int.from_bytes(os.urandom(16), "little", signed=True)


def _pq() -> tuple[int, int]:
    while True:
        p, q = rsa.prime.getprime(31), rsa.prime.getprime(31)
        if p != q:
            return min(p, q), max(p, q)


class KeyExchange:
    """One connection's key exchange. `register(key_bytes, salt)` keeps the finished key."""

    def __init__(self, key: crypto.ServerKey, register: Callable[[bytes, int], None]) -> None:
        self._key = key
        self._register = register
        self._state: _State | None = None

    def handle(self, request: TLObject) -> TLObject:
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._res_pq(request.nonce)
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._dh_params(request)
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._set_client_dh(request)
        raise HandshakeError(f"unexpected plain message {type(request).__name__}")

    def _res_pq(self, nonce: int) -> types.ResPQ:
        p, q = _pq()
        self._state = _State(nonce=nonce, server_nonce=_int128(), p=p, q=q)
        return types.ResPQ(
            nonce=nonce,
            server_nonce=self._state.server_nonce,
            pq=crypto.int_bytes(p * q),
            server_public_key_fingerprints=[self._key.fingerprint],
        )

    def _checked_state(self, nonce: int, server_nonce: int) -> _State:
        state = self._state
        if state is None or state.nonce != nonce or state.server_nonce != server_nonce:
            raise HandshakeError("nonce or server_nonce does not match")
        return state

    def _dh_params(self, request: functions.ReqDHParamsRequest) -> types.ServerDHParamsOk:
        state = self._checked_state(request.nonce, request.server_nonce)
        if request.public_key_fingerprint != self._key.fingerprint:
            raise HandshakeError("unknown public key fingerprint")
        if (
            int.from_bytes(request.p, "big") != state.p
            or int.from_bytes(request.q, "big") != state.q
        ):
            raise HandshakeError("p and q do not factor pq")
        inner_bytes = crypto.rsa_decrypt_inner(self._key, request.encrypted_data)
        if inner_bytes is None:
            raise HandshakeError("encrypted_data does not decrypt with the server key")
        with BinaryReader(inner_bytes) as reader:
            inner = reader.tgread_object()
        if not isinstance(
            inner, types.PQInnerData | types.PQInnerDataDc | types.PQInnerDataTempDc
        ):
            raise HandshakeError(f"p_q_inner_data expected, got {type(inner).__name__}")
        if inner.nonce != state.nonce or inner.server_nonce != state.server_nonce:
            raise HandshakeError("nonces inside p_q_inner_data do not match")
        if int.from_bytes(inner.pq, "big") != state.p * state.q:
            raise HandshakeError("pq inside p_q_inner_data does not match")
        state.new_nonce = inner.new_nonce
        state.a, g_a = crypto.dh_secret()
        state.tmp_key, state.tmp_iv = crypto.tmp_aes(state.server_nonce, inner.new_nonce)
        answer = bytes(
            types.ServerDHInnerData(
                nonce=state.nonce,
                server_nonce=state.server_nonce,
                g=crypto.DH_G,
                dh_prime=crypto.DH_PRIME_BYTES,
                g_a=crypto.int_bytes(g_a),
                server_time=int(time.time()),
            )
        )
        encrypted = AES.encrypt_ige(crypto.padded_with_hash(answer), state.tmp_key, state.tmp_iv)
        return types.ServerDHParamsOk(
            nonce=state.nonce, server_nonce=state.server_nonce, encrypted_answer=encrypted
        )

    def _set_client_dh(self, request: functions.SetClientDHParamsRequest) -> types.DhGenOk:
        state = self._checked_state(request.nonce, request.server_nonce)
        if state.a is None or state.new_nonce is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        if len(request.encrypted_data) % 16:
            raise HandshakeError("encrypted_data is not a whole number of AES blocks")
        plain = AES.decrypt_ige(request.encrypted_data, state.tmp_key, state.tmp_iv)
        inner_bytes = crypto.unpad_with_hash(plain)
        if inner_bytes is None:
            raise HandshakeError("client_DH_inner_data hash does not match")
        with BinaryReader(inner_bytes) as reader:
            inner = reader.tgread_object()
        if not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError(f"client_DH_inner_data expected, got {type(inner).__name__}")
        if inner.nonce != state.nonce or inner.server_nonce != state.server_nonce:
            raise HandshakeError("nonces inside client_DH_inner_data do not match")
        g_b = int.from_bytes(inner.g_b, "big")
        if not crypto.dh_value_ok(g_b):
            raise HandshakeError("g_b outside (2^1984, dh_prime - 2^1984)")
        # Telethon keeps the shared secret as its shortest big-endian form (255 bytes about once
        # in 256 exchanges, where Telegram would keep 256); the server must derive the same key.
        key = crypto.int_bytes(pow(g_b, state.a, crypto.DH_PRIME))
        new_nonce = crypto.nonce_bytes(state.new_nonce, 32)
        server_nonce = crypto.nonce_bytes(state.server_nonce, 16)
        salt = int.from_bytes(
            bytes(x ^ y for x, y in zip(new_nonce[:8], server_nonce[:8], strict=True)),
            "little",
            signed=True,
        )
        self._register(key, salt)
        self._state = None
        return types.DhGenOk(
            nonce=state.nonce,
            server_nonce=state.server_nonce,
            new_nonce_hash1=crypto.new_nonce_hash(key, state.new_nonce, 1),
        )

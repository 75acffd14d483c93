"""The server's half of MTProto's cryptography: RSA, Diffie-Hellman, message keys, SRP.

Everything here mirrors a check the client makes, so each function names what Telethon (or
Telegram's documentation) expects of the server. Telethon's own AES-IGE is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from hashlib import sha1, sha256

import rsa
from telethon.crypto import AES
from telethon.extensions import BinaryReader
from telethon.tl import TLObject

# Telegram's 2048-bit safe prime for the auth key exchange and 2FA (g = 3), big-endian.
DH_PRIME = int(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
    "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
    "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
    "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
    "A4A69581105190"
    "7E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
    "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
    "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B",
    16,
)
DH_G = 3
DH_PRIME_BYTES = DH_PRIME.to_bytes(256, "big")
_SAFETY = 2 ** (2048 - 64)


@dataclass(frozen=True, slots=True)
class ServerKey:
    """The server's RSA key pair; `public_pem` is what TG_SERVER_KEY points at."""

    private: rsa.PrivateKey
    public: rsa.PublicKey
    fingerprint: int

    @property
    def public_pem(self) -> bytes:
        return self.public.save_pkcs1()


def fingerprint(key: rsa.PublicKey) -> int:
    """Telegram's key fingerprint: the low 64 bits of SHA1(n as TL bytes + e as TL bytes)."""
    n = TLObject.serialize_bytes(int_bytes(key.n))
    e = TLObject.serialize_bytes(int_bytes(key.e))
    return int(struct.unpack("<q", sha1(n + e).digest()[-8:])[0])


def new_server_key() -> ServerKey:
    """A fresh 2048-bit RSA key pair.

    OpenSSL makes one in about 50 ms; the pure-Python `rsa.newkeys(2048)` takes 0.3 to 7 s, so
    it is only the fallback where no openssl binary exists.
    """
    openssl = shutil.which("openssl")
    private: rsa.PrivateKey | None = None
    if openssl:
        done = subprocess.run(
            [openssl, "genrsa", "-traditional", "2048"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        if done.returncode == 0:
            private = rsa.PrivateKey.load_pkcs1(done.stdout)
    if private is None:
        _public, private = rsa.newkeys(2048)
    public = rsa.PublicKey(private.n, private.e)
    return ServerKey(private, public, fingerprint(public))


def int_bytes(value: int) -> bytes:
    """Big-endian bytes of a non-negative integer, as short as possible (Telethon's form)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def rsa_decrypt_inner(key: ServerKey, encrypted: bytes) -> bytes | None:
    """The serialized p_q_inner_data from req_DH_params' encrypted_data, or None if forged.

    Two paddings exist: RSA_PAD (Telegram's current one, with a temporary AES key) and the
    older SHA1(data) + data + random bytes that Telethon 1.x still sends. Both are accepted.
    """
    if len(encrypted) != 256:
        return None
    value = int.from_bytes(encrypted, "big")
    if value >= key.private.n:
        return None
    plain = pow(value, key.private.d, key.private.n).to_bytes(256, "big")
    return _rsa_pad_inner(plain) or _legacy_inner(plain)


def _legacy_inner(plain: bytes) -> bytes | None:
    if plain[0] != 0:
        return None
    digest, data = plain[1:21], plain[21:]
    inner = _read_one_object(data)
    if inner is None or sha1(inner).digest() != digest:
        return None
    return inner


def _rsa_pad_inner(plain: bytes) -> bytes | None:
    temp_key_xor, aes_encrypted = plain[:32], plain[32:]
    temp_key = bytes(
        a ^ b for a, b in zip(temp_key_xor, sha256(aes_encrypted).digest(), strict=True)
    )
    data_with_hash = AES.decrypt_ige(aes_encrypted, temp_key, bytes(32))
    data_with_padding = data_with_hash[:192][::-1]
    if sha256(temp_key + data_with_padding).digest() != data_with_hash[192:]:
        return None
    return _read_one_object(data_with_padding)


def _read_one_object(data: bytes) -> bytes | None:
    """The bytes of the first TL object in `data` (the rest is padding)."""
    try:
        with BinaryReader(data) as reader:
            reader.tgread_object()
            return data[: reader.tell_position()]
    except Exception:  # any parse failure means the plaintext was not ours
        return None


def nonce_bytes(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little", signed=True)


def tmp_aes(server_nonce: int, new_nonce: int) -> tuple[bytes, bytes]:
    """tmp_aes_key and tmp_aes_iv of the key exchange's step 3."""
    server = nonce_bytes(server_nonce, 16)
    new = nonce_bytes(new_nonce, 32)
    hash1 = sha1(new + server).digest()
    hash2 = sha1(server + new).digest()
    hash3 = sha1(new + new).digest()
    return hash1 + hash2[:12], hash2[12:20] + hash3 + new[:4]


def padded_with_hash(data: bytes) -> bytes:
    """SHA1(data) + data + random padding to a multiple of 16 bytes."""
    body = sha1(data).digest() + data
    return body + os.urandom(-len(body) % 16)


def unpad_with_hash(plain: bytes) -> bytes | None:
    """Inverse of `padded_with_hash`; None if the hash does not match."""
    digest, rest = plain[:20], plain[20:]
    inner = _read_one_object(rest)
    if inner is None or sha1(inner).digest() != digest:
        return None
    return inner


def dh_secret() -> tuple[int, int]:
    """(a, g_a) with g_a inside the range both sides must check."""
    while True:
        a = int.from_bytes(os.urandom(256), "big")
        g_a = pow(DH_G, a, DH_PRIME)
        if _SAFETY <= g_a <= DH_PRIME - _SAFETY:
            return a, g_a


def dh_value_ok(value: int) -> bool:
    return 1 < value < DH_PRIME - 1 and _SAFETY <= value <= DH_PRIME - _SAFETY


def auth_key_id(key: bytes) -> int:
    return int(struct.unpack("<Q", sha1(key).digest()[-8:])[0])


def new_nonce_hash(key: bytes, new_nonce: int, number: int) -> int:
    aux_hash = sha1(key).digest()[:8]
    data = nonce_bytes(new_nonce, 32) + bytes([number]) + aux_hash
    return int.from_bytes(sha1(data).digest()[4:20], "little", signed=True)


def message_aes(auth_key: bytes, msg_key: bytes, x: int) -> tuple[bytes, bytes]:
    """MTProto 2.0 AES key and IV; x = 0 for client to server, 8 for server to client."""
    a = sha256(msg_key + auth_key[x : x + 36]).digest()
    b = sha256(auth_key[x + 40 : x + 76] + msg_key).digest()
    return a[:8] + b[8:24] + a[24:32], b[:8] + a[8:24] + b[24:32]


def msg_key_for(auth_key: bytes, plain: bytes, x: int) -> bytes:
    return sha256(auth_key[88 + x : 88 + x + 32] + plain).digest()[8:24]


def encrypt_message(auth_key: bytes, key_id: int, plain: bytes) -> bytes:
    """A server-to-client encrypted message (12 to 1024 bytes of padding, as MTProto 2.0)."""
    padding = os.urandom(-(len(plain) + 12) % 16 + 12)
    data = plain + padding
    msg_key = msg_key_for(auth_key, data, 8)
    aes_key, aes_iv = message_aes(auth_key, msg_key, 8)
    return struct.pack("<Q", key_id) + msg_key + AES.encrypt_ige(data, aes_key, aes_iv)


def decrypt_message(auth_key: bytes, body: bytes) -> bytes | None:
    """The plaintext of a client-to-server message, or None if msg_key does not match."""
    msg_key, encrypted = body[8:24], body[24:]
    if len(encrypted) % 16 or not encrypted:
        return None
    aes_key, aes_iv = message_aes(auth_key, msg_key, 0)
    plain = AES.decrypt_ige(encrypted, aes_key, aes_iv)
    if msg_key_for(auth_key, plain, 0) != msg_key:
        return None
    return plain


# ------------------------------------------------------------------ 2FA: SRP-2048, server side


def _h(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _pad256(value: int) -> bytes:
    return value.to_bytes(256, "big")


def password_hash(salt1: bytes, salt2: bytes, password: str) -> int:
    """x of Telegram's SRP: PH2(password, salt1, salt2) as an integer."""
    hash1 = _h(salt1, password.encode("utf-8"), salt1)
    hash2 = _h(salt2, hash1, salt2)
    hash3 = hashlib.pbkdf2_hmac("sha512", hash2, salt1, 100000)
    return int.from_bytes(_h(salt2, hash3, salt2), "big")


def srp_k() -> int:
    return int.from_bytes(_h(DH_PRIME_BYTES, _pad256(DH_G)), "big")


def srp_server_b(verifier: int) -> tuple[int, int]:
    """(b, B) for account.getPassword: B = k*v + g^b mod p, with the client's checks met."""
    k = srp_k()
    g_x = verifier
    while True:
        b = int.from_bytes(os.urandom(256), "big")
        big_b = (k * verifier + pow(DH_G, b, DH_PRIME)) % DH_PRIME
        g_b = (big_b - k * g_x) % DH_PRIME
        if big_b > 0 and _mod_exp_ok(g_b):
            return b, big_b


def _mod_exp_ok(value: int) -> bool:
    diff = DH_PRIME - value
    return diff > 0 and diff.bit_length() >= 2048 - 64 and value.bit_length() >= 2048 - 64


def srp_expected_m1(
    *, salt1: bytes, salt2: bytes, verifier: int, b: int, big_b: int, a_bytes: bytes
) -> bytes | None:
    """The M1 an honest client sends for (A, B); None if A is not acceptable."""
    big_a = int.from_bytes(a_bytes, "big")
    if not 0 < big_a < DH_PRIME:
        return None
    a_for_hash = _pad256(big_a)
    b_for_hash = _pad256(big_b)
    u = int.from_bytes(_h(a_for_hash, b_for_hash), "big")
    s = pow(big_a * pow(verifier, u, DH_PRIME) % DH_PRIME, b, DH_PRIME)
    k_session = _h(_pad256(s))
    p_hash = _h(DH_PRIME_BYTES)
    g_hash = _h(_pad256(DH_G))
    return _h(
        bytes(x ^ y for x, y in zip(p_hash, g_hash, strict=True)),
        _h(salt1),
        _h(salt2),
        a_for_hash,
        b_for_hash,
        k_session,
    )

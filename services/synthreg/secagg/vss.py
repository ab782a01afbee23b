"""Feldman verifiable secret sharing over P-256 (DESIGN.md §4 step 2, "dealt verifiably").

Who calls: :class:`~synthreg.secagg.party.Party` deals its self-mask seed and its
round mask key with :func:`deal` and checks every share it receives with
:func:`verify`; :func:`~synthreg.secagg.unmask.unmask` checks every revealed share
with :func:`verify` and recombines ``t`` good ones with :func:`combine`.

Why not ``crypto.shamir`` (pycryptodome's ``Shamir``) here: it shares over
GF(2^128) and has no public per-share check, so a dealer can hand one recipient a
share off its polynomial inside a perfectly valid envelope; the recipient cannot
tell, and at unmask time the recombined secret fails its commitment with no way
to say whether the dealer or a revealer lied (the old code blamed the revealer).
Feldman VSS needs shares in Z_q of a prime-order group: here q = n, the order of
the P-256 base point G (pycryptodome's C point arithmetic, ~0.3 ms per scalar
multiplication; no new dependency). The key ceremony keeps ``crypto.shamir``: its
shares are checked against per-share hash commitments and the GCM tag.

Scheme: secret s < n, random a_1..a_{t-1} in Z_n, f(x) = s + Σ a_j x^j mod n;
share of index i (1..N) is f(i); commitments C_j = a_j·G (C_0 = s·G), public. A
share y of index i is good iff y·G == Σ_j (i^j mod n)·C_j.

What the commitments reveal: nothing about s beyond s·G (Feldman, computationally
hiding under the discrete-logarithm assumption on P-256). s is a fresh uniform
256-bit seed or X25519 private key, never reused, and the ledger already carries
a hash commitment to the seed and the X25519 public key of the key, so s·G adds no
practical exposure. ``t - 1`` shares stay independent of s.

Encodings: a share is u16be index ‖ 32-byte big-endian f(i) (34 bytes, the size
the chaincode checks); a commitment is a 33-byte SEC1 compressed point.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Sequence

from Crypto.PublicKey import ECC
from Crypto.PublicKey._point import EccPoint

__all__ = [
    "ORDER",
    "POINT_BYTES",
    "SCALAR_BYTES",
    "SHARE_BYTES",
    "EccPoint",
    "VSSFormatError",
    "combine",
    "deal",
    "decode_point",
    "decode_share",
    "encode_share",
    "random_scalar_bytes",
    "verify",
]

CURVE = "P-256"
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # n of P-256 (SEC 2)
SCALAR_BYTES = 32
POINT_BYTES = 33
SHARE_BYTES = 2 + SCALAR_BYTES
MAX_INDEX = 255
_SHARE = struct.Struct(">H32s")
_G: EccPoint = ECC.construct(curve=CURVE, d=1).pointQ


class VSSFormatError(ValueError):
    """A share, scalar or commitment encoding is malformed (callers re-raise it typed)."""


def random_scalar_bytes() -> bytearray:
    """32 uniformly random bytes whose big-endian value is < n (rejection: p ≈ 2^-32)."""
    while True:
        out = bytearray(secrets.token_bytes(SCALAR_BYTES))
        if int.from_bytes(out, "big") < ORDER:
            return out
        out[:] = bytes(SCALAR_BYTES)


def _secret_int(secret: bytes | bytearray) -> int:
    if len(secret) != SCALAR_BYTES:
        raise VSSFormatError(f"secret must be {SCALAR_BYTES} bytes")
    value = int.from_bytes(secret, "big")
    if value >= ORDER:
        raise VSSFormatError("secret is not below the group order")
    return value


def _encode_point(p: EccPoint) -> bytes:
    return bytes(ECC.EccKey(curve=CURVE, point=p).export_key(format="SEC1", compress=True))


def decode_point(data: bytes) -> EccPoint:
    """A 33-byte compressed P-256 point (not the identity); :class:`VSSFormatError` otherwise."""
    if len(data) != POINT_BYTES or data[0] not in (2, 3):
        raise VSSFormatError(f"commitment must be a {POINT_BYTES}-byte compressed point")
    try:
        return ECC.import_key(bytes(data), curve_name=CURVE).pointQ
    except ValueError as exc:
        raise VSSFormatError(f"commitment is not a P-256 point: {exc}") from exc


def encode_share(index: int, value: int) -> bytearray:
    """u16be index ‖ 32-byte big-endian value."""
    return bytearray(_SHARE.pack(index, value.to_bytes(SCALAR_BYTES, "big")))


def decode_share(data: bytes | bytearray) -> tuple[int, int]:
    """(index, value) of a 34-byte share; :class:`VSSFormatError` if malformed or out of range."""
    if len(data) != SHARE_BYTES:
        raise VSSFormatError(f"share must be {SHARE_BYTES} bytes, got {len(data)}")
    index, raw = _SHARE.unpack(bytes(data))
    value = int.from_bytes(raw, "big")
    if not 1 <= index <= MAX_INDEX:
        raise VSSFormatError(f"share index {index} outside 1..{MAX_INDEX}")
    if value >= ORDER:
        raise VSSFormatError("share value is not below the group order")
    return index, value


def deal(secret: bytes | bytearray, t: int, n: int) -> tuple[list[bytearray], tuple[bytes, ...]]:
    """Shares 1..n (34 bytes each, list position = index - 1) and the t commitments.

    ``secret`` is 32 bytes with big-endian value < n (:func:`random_scalar_bytes`).
    """
    if not 1 <= t <= n <= MAX_INDEX:
        raise VSSFormatError(f"need 1 <= t <= n <= {MAX_INDEX}, got t={t}, n={n}")
    coeffs = [_secret_int(secret)] + [secrets.randbelow(ORDER) for _ in range(t - 1)]
    commitments = tuple(_encode_point(_G * a) for a in coeffs)
    shares = []
    for i in range(1, n + 1):
        y = 0
        for a in reversed(coeffs):
            y = (y * i + a) % ORDER
        shares.append(encode_share(i, y))
    coeffs[:] = [0] * len(coeffs)  # best effort: Python ints are immutable, drop the references
    return shares, commitments


def verify(index: int, value: int, commitments: Sequence[EccPoint]) -> bool:
    """Whether value·G == Σ_j (index^j mod n)·C_j (the share lies on the committed polynomial)."""
    expected = commitments[0].copy()
    power = 1
    for c in commitments[1:]:
        power = power * index % ORDER
        expected = expected + c * power
    return (_G * value) == expected


def combine(shares: Sequence[tuple[int, int]]) -> bytearray:
    """f(0) from distinct (index, value) points by Lagrange interpolation mod n, as 32 bytes.

    The caller passes exactly ``t`` shares that passed :func:`verify`.
    """
    indices = [i for i, _ in shares]
    if len(set(indices)) != len(indices):
        raise VSSFormatError(f"duplicate share indices in {indices}")
    secret = 0
    for i, y in shares:
        num, den = 1, 1
        for j in indices:
            if j != i:
                num = num * j % ORDER
                den = den * (j - i) % ORDER
        secret = (secret + y * num * pow(den, -1, ORDER)) % ORDER
    return bytearray(secret.to_bytes(SCALAR_BYTES, "big"))

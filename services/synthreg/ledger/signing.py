"""Signers: functions that sign a SHA-256 digest and return a DER ECDSA signature.

The :class:`~synthreg.ledger.gateway.Gateway` never touches private keys: the
caller injects a :data:`Signer` (from :func:`ecdsa_signer`, an HSM, or a test
double). Fabric peers and orderers reject ECDSA signatures whose ``s`` lies in
the upper half of the curve order ("high-S", malleable), so
:func:`ecdsa_signer` always normalises to low-S. :func:`high_s` converts a
signature to its (mathematically still valid) high-S twin, which integration
tests use to show the peer really enforces the rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

Signer = Callable[[bytes], bytes]
"""Takes the 32-byte SHA-256 digest of a message, returns a DER ECDSA signature."""

_CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}
P256_ORDER = _CURVE_ORDERS["secp256r1"]


def digest(message: bytes) -> bytes:
    """SHA-256 of ``message``: what a :data:`Signer` receives."""
    return hashlib.sha256(message).digest()


def curve_order(curve: ec.EllipticCurve) -> int:
    """Group order ``n`` of a supported curve (P-256, P-384); ``ValueError`` otherwise."""
    try:
        return _CURVE_ORDERS[curve.name]
    except KeyError:
        raise ValueError(f"unsupported curve {curve.name!r}: Fabric uses P-256 or P-384") from None


def is_low_s(signature: bytes, order: int = P256_ORDER) -> bool:
    """True if the DER signature's ``s`` is at most ``order // 2``."""
    _, s = decode_dss_signature(signature)
    return s <= order // 2


def to_low_s(signature: bytes, order: int = P256_ORDER) -> bytes:
    """The low-S form of a DER ECDSA signature (unchanged if already low-S)."""
    r, s = decode_dss_signature(signature)
    if s > order // 2:
        s = order - s
    return encode_dss_signature(r, s)


def high_s(signature: bytes, order: int = P256_ORDER) -> bytes:
    """The high-S twin of a DER ECDSA signature: valid ECDSA, but rejected by Fabric.

    Test helper only (integration test: the peer must refuse it).
    """
    r, s = decode_dss_signature(signature)
    if s <= order // 2:
        s = order - s
    return encode_dss_signature(r, s)


def ecdsa_signer(private_key: ec.EllipticCurvePrivateKey) -> Signer:
    """A :data:`Signer` over ``private_key`` producing low-S DER signatures.

    The digest must be SHA-256 (32 bytes); anything else raises ``ValueError``
    rather than silently signing the wrong thing.
    """
    order = curve_order(private_key.curve)
    algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))

    def sign(message_digest: bytes) -> bytes:
        if len(message_digest) != 32:
            raise ValueError(f"expected a 32-byte SHA-256 digest, got {len(message_digest)} bytes")
        return to_low_s(private_key.sign(message_digest, algorithm), order)

    return sign

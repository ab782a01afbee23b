"""Everything SPEC pins byte for byte: commitments, envelope contexts, blobs, records.

Who calls: :mod:`~synthreg.secagg.party` and :mod:`~synthreg.secagg.unmask`; the
ledger driver uses :class:`Advertisement`, :class:`Reveal` (``to_json``/``from_json``
give the ledger JSON shapes with base64 values) and :func:`encode_u64` /
:func:`decode_u64` for the masked blob. Nothing here holds a secret for longer than
a call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from synthreg.crypto.transport import EnvelopeContext
from synthreg.data.hashing import array_sha256
from synthreg.secagg import vss
from synthreg.secagg.errors import (
    AdvertisementError,
    BadDealingError,
    BlobLengthError,
    RevealFormatError,
    VectorShapeError,
)
from synthreg.secagg.params import Params

__all__ = [
    "ENVELOPE_PURPOSE",
    "PUBLIC_KEY_BYTES",
    "SHARE_BYTES",
    "Advertisement",
    "Dealing",
    "Reveal",
    "average_sha256",
    "decode_u64",
    "encode_u64",
    "seed_commitment",
    "share_context",
]

ENVELOPE_PURPOSE = "secagg-share"
PUBLIC_KEY_BYTES = 32
SHARE_BYTES = 34  # secagg.vss share: u16be index ‖ 32-byte big-endian value mod n
_SEED_DOMAIN = b"synthreg/secagg/seed/v1\x00"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def seed_commitment(params: Params, msp: str, seed: bytes | bytearray) -> str:
    """sha256(domain ‖ lp(run) ‖ u32be(round) ‖ lp(msp) ‖ seed), lowercase hex."""
    msg = _SEED_DOMAIN + _lp(params.run) + struct.pack(">I", params.round) + _lp(msp) + bytes(seed)
    return hashlib.sha256(msg).hexdigest()


def share_context(params: Params, sender: str, recipient: str) -> EnvelopeContext:
    """Envelope context of ``sender``'s shares for ``recipient`` in this round."""
    return EnvelopeContext(
        purpose=ENVELOPE_PURPOSE, ceremony_id=f"{params.run}/{params.round}/{sender}", recipient_id=recipient
    )


@dataclass(frozen=True)
class Advertisement:
    """What a party posts in ``Advertise``: round public key (32 raw bytes) and seed commitment.

    Validated on construction (:class:`AdvertisementError`; ``msp`` is unknown here,
    so errors name ``"?"`` -- use :meth:`from_json` to get the party named).
    """

    public_key: bytes
    seed_commit: str

    def __post_init__(self) -> None:
        _check_advertisement("?", self.public_key, self.seed_commit)

    def to_json(self) -> dict[str, str]:
        """``{"public_key": b64, "seed_commit": hex}`` (the ledger's shape)."""
        return {"public_key": base64.b64encode(self.public_key).decode("ascii"), "seed_commit": self.seed_commit}

    @classmethod
    def from_json(cls, msp: str, d: Mapping[str, Any]) -> Advertisement:
        """Inverse of :meth:`to_json`; extra keys (txid, timestamp) are ignored.
        Raises :class:`AdvertisementError` naming ``msp``."""
        try:
            key = base64.b64decode(d["public_key"], validate=True)
            commit = d["seed_commit"]
        except (KeyError, TypeError, binascii.Error) as exc:
            raise AdvertisementError(msp, f"malformed: {exc!r}") from exc
        _check_advertisement(msp, key, commit)
        return cls(key, commit)


def _check_advertisement(msp: str, key: object, commit: object) -> None:
    if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_BYTES:
        raise AdvertisementError(msp, f"public key must be {PUBLIC_KEY_BYTES} raw bytes")
    if not isinstance(commit, str) or not _HEX64.match(commit):
        raise AdvertisementError(msp, "seed commitment must be 64 lowercase hex characters")


@dataclass(frozen=True)
class Dealing:
    """A dealer's public Feldman commitments (``PostShares`` dealingJSON): ``t`` compressed
    P-256 points for its seed polynomial and ``t`` for its mask-key polynomial
    (:mod:`~synthreg.secagg.vss`). Same for every recipient, so a dealer cannot
    equivocate: each share it sends is checkable against them."""

    seed: tuple[bytes, ...]
    key: tuple[bytes, ...]

    def to_json(self) -> dict[str, list[str]]:
        """``{"seed": [b64 point, ...], "key": [b64 point, ...]}`` (the ledger's shape)."""
        return {kind: [base64.b64encode(c).decode("ascii") for c in getattr(self, kind)] for kind in ("seed", "key")}

    @classmethod
    def from_json(cls, dealer: str, d: Mapping[str, Any]) -> Dealing:
        """Inverse of :meth:`to_json`. Raises :class:`BadDealingError` naming ``dealer``."""
        try:
            parts = {kind: tuple(base64.b64decode(c, validate=True) for c in d[kind]) for kind in ("seed", "key")}
        except (KeyError, TypeError, binascii.Error) as exc:
            raise BadDealingError(dealer, "*", "commitments", f"malformed: {exc!r}") from exc
        return cls(parts["seed"], parts["key"])

    def points(self, dealer: str, recipient: str, threshold: int) -> dict[str, list[vss.EccPoint]]:
        """The decoded commitments per kind; :class:`BadDealingError` unless ``threshold`` valid points each."""
        out = {}
        for kind in ("seed", "key"):
            raw = getattr(self, kind)
            if len(raw) != threshold:
                raise BadDealingError(dealer, recipient, "commitments", f"{len(raw)} {kind} commitments, t={threshold}")
            try:
                out[kind] = [vss.decode_point(c) for c in raw]
            except vss.VSSFormatError as exc:
                raise BadDealingError(dealer, recipient, "commitments", str(exc)) from exc
        return out


@dataclass(frozen=True)
class Reveal:
    """What a survivor posts in ``Reveal``: 34-byte shares it holds, keyed by owner.

    ``seed_shares`` covers every member of U (own share included), ``key_shares``
    every member of D; never both for one party (the producer,
    :meth:`Party.reveal`, and the consumer, :func:`unmask`, both check).
    """

    seed_shares: dict[str, bytes] = field(repr=False)
    key_shares: dict[str, bytes] = field(repr=False)

    def to_json(self) -> dict[str, dict[str, str]]:
        """``{"seed_shares": {msp: b64}, "key_shares": {msp: b64}}`` (the ledger's shape)."""
        return {
            "seed_shares": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(self.seed_shares.items())},
            "key_shares": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(self.key_shares.items())},
        }

    @classmethod
    def from_json(cls, revealer: str, d: Mapping[str, Any]) -> Reveal:
        """Inverse of :meth:`to_json`. Raises :class:`RevealFormatError` naming ``revealer``."""
        try:
            parts = {
                kind: {str(k): base64.b64decode(v, validate=True) for k, v in d[kind].items()}
                for kind in ("seed_shares", "key_shares")
            }
        except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise RevealFormatError(revealer, f"malformed: {exc!r}") from exc
        for kind, shares in parts.items():
            for owner, raw in shares.items():
                if len(raw) != SHARE_BYTES:
                    raise RevealFormatError(revealer, f"{kind}[{owner!r}] is {len(raw)} bytes, not {SHARE_BYTES}")
        return cls(parts["seed_shares"], parts["key_shares"])


def encode_u64(arr: npt.NDArray[np.uint64]) -> bytes:
    """Raw little-endian bytes of a 1-D uint64 vector (8L bytes): the masked blob."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint64 or arr.ndim != 1:
        raise VectorShapeError("blob vector", getattr(arr, "dtype", type(arr).__name__), "1-D uint64")
    return arr.astype("<u8", copy=False).tobytes()


def decode_u64(data: bytes | bytearray | memoryview, length: int) -> npt.NDArray[np.uint64]:
    """Inverse of :func:`encode_u64`; raises :class:`BlobLengthError` unless 8*``length`` bytes."""
    if len(data) != 8 * length:
        raise BlobLengthError(len(data), 8 * length)
    return np.frombuffer(bytes(data), dtype="<u8").astype(np.uint64)


def average_sha256(avg: npt.NDArray[np.float32]) -> str:
    """:func:`~synthreg.data.hashing.array_sha256` of the average (``average_sha256``):
    the hash the workspace and the trail records give the same vector."""
    if not isinstance(avg, np.ndarray) or avg.dtype != np.float32 or avg.ndim != 1:
        raise VectorShapeError("average", getattr(avg, "dtype", type(avg).__name__), "1-D float32")
    return array_sha256(avg)

"""t-of-n Shamir sharing of a 32-byte key, with published per-share commitments.

Who calls: the key ceremony splits the sealing key (:func:`split`) and publishes
:func:`make_commitments`; the auditor recombines released shares
(:func:`combine`). Secure aggregation (DESIGN.md §4) reuses the same functions for
per-round mask seeds and keys.

pycryptodome's ``Shamir`` (4.4.0: ``split(k, n, secret, ssss=False)`` /
``combine(shares, ssss=False)``, GF(2^128)) works on 16-byte secrets, so a 32-byte
key is split as two independent 16-byte halves that share the same x-index.
``Shamir.combine`` returns garbage silently for wrong or too few shares, so
:func:`combine` (1) refuses duplicates and fewer than ``t`` shares, (2) checks
every share against its published commitment and names a bad one, and (3) runs an
optional ``verify`` callback on the result (the auditor passes an AES-GCM unseal,
whose tag catches a forged share that came with a forged commitment).

Commitment = sha256(domain ‖ ceremony id ‖ index ‖ share bytes), length-prefixed.
Shares are uniformly random 32-byte values, so a commitment reveals nothing that
can be brute-forced; the ceremony id (random, public) domain-separates ceremonies
so equal shares in two ceremonies never give equal commitments.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from Crypto.Protocol.SecretSharing import Shamir

__all__ = [
    "SECRET_BYTES",
    "DuplicateShareError",
    "KeyVerificationError",
    "NotEnoughSharesError",
    "ShamirError",
    "Share",
    "ShareCommitments",
    "ShareFormatError",
    "TamperedShareError",
    "combine",
    "commit",
    "make_commitments",
    "split",
]

SECRET_BYTES = 32
HALF_BYTES = 16
MAX_SHARES = 255
_COMMIT_DOMAIN = b"synthreg/shamir-commitment/v1\x00"
_SHARE_BYTES = struct.Struct(">H32s")


class ShamirError(Exception):
    """Base class of every error raised by this module."""


class ShareFormatError(ShamirError, ValueError):
    """A share or commitment encoding is malformed."""


class NotEnoughSharesError(ShamirError):
    """Fewer than ``need`` valid shares were presented (``have`` counted)."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"not enough shares: have {have}, need {need}")
        self.have = have
        self.need = need


class DuplicateShareError(ShamirError):
    """Two presented shares carry the same ``index``."""

    def __init__(self, index: int) -> None:
        super().__init__(f"share index {index} presented more than once")
        self.index = index


class TamperedShareError(ShamirError):
    """Share ``index`` does not match its published commitment (or has none)."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"share {index} rejected: {reason}")
        self.index = index
        self.reason = reason


class KeyVerificationError(ShamirError):
    """The recombined key failed the caller's check (e.g. the GCM tag).

    ``indices`` are the shares that were combined; raised ``from`` the check's error.
    """

    def __init__(self, indices: Sequence[int], detail: str) -> None:
        super().__init__(f"key recombined from shares {list(indices)} failed verification: {detail}")
        self.indices = tuple(indices)


@dataclass(frozen=True)
class Share:
    """One Shamir share of a 32-byte secret: x-index and the two 16-byte y-values.

    Secret material: the halves are kept out of ``repr``. Encodings: 34 raw bytes
    (:meth:`to_bytes`) or ``"<index>:<64 hex chars>"`` (:meth:`to_str`).
    """

    index: int
    half_a: bytes = field(repr=False)
    half_b: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not (1 <= self.index <= MAX_SHARES):
            raise ShareFormatError(f"share index {self.index} outside 1..{MAX_SHARES}")
        if len(self.half_a) != HALF_BYTES or len(self.half_b) != HALF_BYTES:
            raise ShareFormatError(f"share {self.index}: halves must be {HALF_BYTES} bytes each")

    def value(self) -> bytes:
        """The 32 share bytes ``half_a ‖ half_b``."""
        return self.half_a + self.half_b

    def to_bytes(self) -> bytes:
        """``index`` (u16 big-endian) ‖ 32 share bytes."""
        return _SHARE_BYTES.pack(self.index, self.value())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> Share:
        """Inverse of :meth:`to_bytes`. Raises :class:`ShareFormatError`."""
        if len(data) != _SHARE_BYTES.size:
            raise ShareFormatError(f"share must be {_SHARE_BYTES.size} bytes, got {len(data)}")
        index, value = _SHARE_BYTES.unpack(bytes(data))
        return cls(index, value[:HALF_BYTES], value[HALF_BYTES:])

    def to_str(self) -> str:
        """``"<index>:<hex>"``, e.g. for a terminal or a JSON file the auditor holds."""
        return f"{self.index}:{self.value().hex()}"

    @classmethod
    def from_str(cls, text: str) -> Share:
        """Inverse of :meth:`to_str`. Raises :class:`ShareFormatError`."""
        index_s, sep, hex_s = text.strip().partition(":")
        try:
            if not sep:
                raise ValueError("missing ':'")
            value = bytes.fromhex(hex_s)
            index = int(index_s)
        except ValueError as exc:
            raise ShareFormatError(f"bad share string: {exc}") from exc
        if len(value) != SECRET_BYTES:
            raise ShareFormatError(f"share value must be {SECRET_BYTES} bytes, got {len(value)}")
        return cls(index, value[:HALF_BYTES], value[HALF_BYTES:])


def commit(share: Share, ceremony_id: str) -> str:
    """Hex sha256 commitment to ``share`` within ``ceremony_id``."""
    cid = ceremony_id.encode("utf-8")
    msg = _COMMIT_DOMAIN + struct.pack(">H", len(cid)) + cid + share.to_bytes()
    return hashlib.sha256(msg).hexdigest()


@dataclass(frozen=True)
class ShareCommitments:
    """Public commitments of one split: ``digests[index]`` for every share index."""

    ceremony_id: str
    digests: Mapping[int, str]

    @property
    def n(self) -> int:
        """Number of shares the split produced."""
        return len(self.digests)

    def check(self, share: Share) -> None:
        """Raise :class:`TamperedShareError` unless ``share`` matches its commitment."""
        expected = self.digests.get(share.index)
        if expected is None:
            raise TamperedShareError(share.index, "no commitment published for this index")
        if not hmac.compare_digest(expected, commit(share, self.ceremony_id)):
            raise TamperedShareError(share.index, "does not match its published commitment")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; indices become string keys."""
        return {
            "ceremony_id": self.ceremony_id,
            "digests": {str(i): d for i, d in sorted(self.digests.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShareCommitments:
        """Inverse of :meth:`to_dict`. Raises :class:`ShareFormatError`."""
        try:
            cid = d["ceremony_id"]
            digests = {int(i): str(v) for i, v in d["digests"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ShareFormatError(f"bad commitments dict: {exc!r}") from exc
        if not isinstance(cid, str):
            raise ShareFormatError("ceremony_id must be a string")
        for i, v in digests.items():
            if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
                raise ShareFormatError(f"commitment {i} is not a lowercase hex sha256")
        return cls(cid, digests)


def split(secret: bytes | bytearray, t: int, n: int) -> list[Share]:
    """Split a 32-byte secret into ``n`` shares (indices 1..n), any ``t`` recover it.

    Raises ``ValueError`` for a secret that is not 32 bytes or a bad ``t``/``n``.
    """
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secret must be {SECRET_BYTES} bytes, got {len(secret)}")
    if not (1 <= t <= n <= MAX_SHARES):
        raise ValueError(f"invalid threshold t={t}, n={n} (need 1 <= t <= n <= {MAX_SHARES})")
    halves_a = Shamir.split(t, n, bytes(secret[:HALF_BYTES]))
    halves_b = Shamir.split(t, n, bytes(secret[HALF_BYTES:]))
    shares = []
    for (ia, ya), (ib, yb) in zip(halves_a, halves_b, strict=True):
        if ia != ib:  # pycryptodome numbers shares 1..n in order; guard the assumption
            raise AssertionError(f"pycryptodome returned mismatched indices {ia} != {ib}")
        shares.append(Share(ia, ya, yb))
    return shares


def make_commitments(shares: Sequence[Share], ceremony_id: str) -> ShareCommitments:
    """Commitments for every share of one split (published on the ledger)."""
    return ShareCommitments(ceremony_id, {s.index: commit(s, ceremony_id) for s in shares})


def combine(
    shares: Sequence[Share],
    commitments: ShareCommitments,
    t: int,
    verify: Callable[[bytearray], object] | None = None,
) -> bytearray:
    """Recombine the 32-byte secret from at least ``t`` shares; fail loudly otherwise.

    Order of checks: duplicate indices (:class:`DuplicateShareError`), every share
    against its commitment (:class:`TamperedShareError` naming the index), count
    (:class:`NotEnoughSharesError`). The ``t`` lowest-index shares are combined (as
    pycryptodome requires exactly ``t``). Then ``verify(key)`` is called if given;
    any exception it raises, or a ``False`` return, becomes
    :class:`KeyVerificationError` (chained to the cause).
    Returns the key as a bytearray the caller should zero after use.
    """
    if not (1 <= t <= commitments.n):
        raise ValueError(f"invalid threshold t={t} for {commitments.n} committed shares")
    seen: set[int] = set()
    for share in shares:
        if share.index in seen:
            raise DuplicateShareError(share.index)
        seen.add(share.index)
    for share in shares:
        commitments.check(share)
    if len(shares) < t:
        raise NotEnoughSharesError(len(shares), t)
    chosen = sorted(shares, key=lambda s: s.index)[:t]
    key = bytearray(Shamir.combine([(s.index, s.half_a) for s in chosen]))
    key += Shamir.combine([(s.index, s.half_b) for s in chosen])
    if verify is not None:
        indices = [s.index for s in chosen]
        try:
            verdict = verify(key)
        except Exception as exc:
            key[:] = bytes(len(key))
            raise KeyVerificationError(indices, str(exc)) from exc
        if verdict is False:
            key[:] = bytes(len(key))
            raise KeyVerificationError(indices, "verify callback returned False")
    return key

"""Share extension: a new Shamir share for a newcomer, without rebuilding the secret.

Who calls: :mod:`synthreg.keys.extension` (the ``synthreg keys request-share`` /
``contribute-share`` / ``complete-share`` CLIs). The keyvault chaincode keeps the
public record and the order of steps (``chaincode/keyvault/extend.go``); this
module is the arithmetic, pure and without I/O.

The sealing key was split by :func:`synthreg.crypto.shamir.split`: two 16-byte
halves, each the constant term of a degree ``t-1`` polynomial ``f`` over
GF(2^128), share ``i`` = ``f(i)``. A newcomer with the unused index ``x`` needs
``f(x) = Σ_{i∈S} λ_i(x)·f(i)`` for a set ``S`` of ``t`` holders. Holder ``i``
sends ``c_i = λ_i(x)·f(i) + Σ_{j∈S, j≠i} m_ij`` encrypted to the newcomer, where
``m_ij = m_ji`` is a pairwise mask both derive from X25519 between their share
keys; addition in GF(2^128) is XOR, so every mask appears twice in the sum and
cancels, and ``Σ c_i = f(x)``.

What each party learns. The newcomer learns ``f(x)`` and nothing else: each
``c_i`` is hidden by a mask shared with another holder it does not know. A
newcomer colluding with holders learns the sum of the honest holders' terms,
which is ``f(x)`` minus the colluders' own terms: nothing beyond the shares the
coalition holds, so fewer than ``t`` of them still learn nothing of the key (the
argument of pairwise-masked secure aggregation). Nobody checks a contribution:
commitments are hashes, so a holder that sends a wrong term gives the newcomer a
wrong share, found when the auditor unseals with it (the GCM tag fails,
:class:`~synthreg.crypto.shamir.KeyVerificationError` names the indices).

``λ_i(x)·y`` is computed with pycryptodome's own interpolation: ``Shamir.combine``
returns ``g(0)`` of the polynomial through its points and is linear in the
y-values, and ``g(z) = f(z + x)`` passes through ``(i + x, f(i))`` (``+`` = XOR),
so ``combine([(i⊕x, y)] + [(j⊕x, 0) for the other j])`` = ``λ_i(x)·y``. No field
arithmetic is written here.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from Crypto.Protocol.SecretSharing import Shamir

from synthreg.crypto.shamir import HALF_BYTES, MAX_SHARES, Share
from synthreg.crypto.transport import (
    Envelope,
    EnvelopeContext,
    EnvelopeError,
    RecipientKeyPair,
    derive_pairwise_seed,
    load_public_key,
    open_envelope,
    seal_to,
)

__all__ = [
    "PURPOSE_EXTEND",
    "ExtensionError",
    "ExtensionPlan",
    "assemble",
    "contribute",
]

PURPOSE_EXTEND = "synthreg/share-extension/v1"
_MASK_DOMAIN = b"synthreg/share-extension-mask/v1\x00"
_ZERO = bytes(HALF_BYTES)


class ExtensionError(ValueError):
    """A share extension cannot be computed; ``who`` names the party or field at fault."""

    def __init__(self, who: str, reason: str) -> None:
        super().__init__(f"share extension: {who}: {reason}")
        self.who = who
        self.reason = reason


@dataclass(frozen=True)
class ExtensionPlan:
    """The public facts of one extension, as the ledger records them.

    ``holders`` maps each chosen holder id to ``(share index, raw X25519 share
    public key)``; ``newcomer_key`` is the newcomer's raw share public key.
    """

    ceremony_id: str
    extension_id: str
    newcomer: str
    new_index: int
    newcomer_key: bytes
    holders: Mapping[str, tuple[int, bytes]]

    def __post_init__(self) -> None:
        if not (1 <= self.new_index <= MAX_SHARES):
            raise ExtensionError("new_index", f"{self.new_index} outside 1..{MAX_SHARES}")
        indices = [i for i, _ in self.holders.values()]
        if len(indices) < 2:
            raise ExtensionError("holders", f"{len(indices)} holder(s); at least t >= 2 are needed")
        if len(set(indices)) != len(indices):
            raise ExtensionError("holders", f"duplicate share index among {sorted(indices)}")
        if self.new_index in indices:
            raise ExtensionError("new_index", f"{self.new_index} is already a holder's index")
        if self.newcomer in self.holders:
            raise ExtensionError("holders", f"the newcomer {self.newcomer} cannot be its own holder")
        for who, (_, key) in self.holders.items():
            try:
                load_public_key(key)
            except ValueError as exc:
                raise ExtensionError(who, f"bad share public key: {exc}") from exc
        try:
            load_public_key(self.newcomer_key)
        except ValueError as exc:
            raise ExtensionError(self.newcomer, f"bad share public key: {exc}") from exc

    def context(self, holder: str) -> EnvelopeContext:
        """The envelope context of ``holder``'s contribution (binds extension and holder)."""
        return EnvelopeContext(PURPOSE_EXTEND, self.ceremony_id, f"{self.newcomer}/{self.extension_id}/{holder}")

    def _mask_info(self, a: int, b: int) -> bytes:
        lo, hi = sorted((a, b))
        ids = f"{self.ceremony_id}\x00{self.extension_id}\x00{self.newcomer}".encode()
        return _MASK_DOMAIN + struct.pack(">HHH", self.new_index, lo, hi) + ids


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _lagrange_term(index: int, others: list[int], new_index: int, y: bytes) -> bytes:
    points = [(index ^ new_index, y)] + [(j ^ new_index, _ZERO) for j in others]
    return bytes(Shamir.combine(points))


def contribute(plan: ExtensionPlan, holder: str, own_key: RecipientKeyPair, own_share: Share) -> Envelope:
    """Holder side: the masked term ``λ_i(x)·f(i) + Σ m_ij``, encrypted to the newcomer.

    Raises :class:`ExtensionError` when ``holder`` is not in the plan, its share's
    index or public key differ from the plan's (the masks would not cancel).
    """
    if holder not in plan.holders:
        raise ExtensionError(holder, f"not one of the chosen holders {sorted(plan.holders)}")
    index, published = plan.holders[holder]
    if own_share.index != index:
        raise ExtensionError(holder, f"own share has index {own_share.index}, the plan says {index}")
    if own_key.public_raw() != published:
        raise ExtensionError(holder, "own share key is not the one the ledger records for this holder")
    others = sorted(i for h, (i, _) in plan.holders.items() if h != holder)
    term_a = _lagrange_term(index, others, plan.new_index, own_share.half_a)
    term_b = _lagrange_term(index, others, plan.new_index, own_share.half_b)
    for other, (j, key) in sorted(plan.holders.items()):
        if other == holder:
            continue
        mask = derive_pairwise_seed(own_key, key, plan._mask_info(index, j))
        term_a = _xor(term_a, mask[:HALF_BYTES])
        term_b = _xor(term_b, mask[HALF_BYTES:])
    return seal_to(plan.newcomer_key, term_a + term_b, plan.context(holder))


def assemble(plan: ExtensionPlan, newcomer_key: RecipientKeyPair, contributions: Mapping[str, Envelope]) -> Share:
    """Newcomer side: open every holder's contribution and add them up to ``f(x)``.

    Raises :class:`ExtensionError` naming a missing, unexpected or unreadable
    contribution, or a newcomer key that is not the plan's.
    """
    if newcomer_key.public_raw() != plan.newcomer_key:
        raise ExtensionError(plan.newcomer, "this share key is not the one the extension was requested with")
    missing = sorted(set(plan.holders) - set(contributions))
    extra = sorted(set(contributions) - set(plan.holders))
    if missing or extra:
        raise ExtensionError("contributions", f"missing from {missing}, unexpected from {extra}")
    total = bytearray(2 * HALF_BYTES)
    for holder in sorted(contributions):
        try:
            part = open_envelope(newcomer_key, contributions[holder], plan.context(holder))
        except EnvelopeError as exc:
            raise ExtensionError(holder, f"contribution cannot be opened: {exc.reason}") from exc
        if len(part) != 2 * HALF_BYTES:
            raise ExtensionError(holder, f"contribution is {len(part)} bytes, not {2 * HALF_BYTES}")
        total[:] = _xor(bytes(total), bytes(part))
        part[:] = bytes(len(part))
    try:
        return Share(plan.new_index, bytes(total[:HALF_BYTES]), bytes(total[HALF_BYTES:]))
    finally:
        total[:] = bytes(len(total))

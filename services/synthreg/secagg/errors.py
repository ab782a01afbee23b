"""Typed failures of secure aggregation (DESIGN.md §4), one class per failure kind.

Who catches: the ledger driver (``synthreg.chain.secagg``) maps these to round
outcomes (e.g. :class:`BadDealingError` names the dealer of a bad share, found on
receipt; :class:`BadRevealError` a revealer whose share fails the dealer's
commitments; :class:`SeedCommitmentMismatchError` a party whose verified shares
recombine to something other than what it advertised).
Every class derives from :class:`SecAggError`; the input-validation ones also from
``ValueError``. Errors raised because of a lower-level failure are chained
(``raise ... from exc``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AdvertisementError",
    "AlreadyUsedError",
    "BadDealingError",
    "BadRevealError",
    "BlobLengthError",
    "DuplicateSharesError",
    "ErasedError",
    "FixedPointRangeError",
    "MaskKeyMismatchError",
    "MissingShareError",
    "NonFiniteValueError",
    "NotEnoughAdvertisedError",
    "NotEnoughRevealsError",
    "ParamsError",
    "PeerSetError",
    "PhaseError",
    "RecoveryMismatchError",
    "RevealConflictError",
    "RevealFormatError",
    "SecAggError",
    "SeedCommitmentMismatchError",
    "ShareEnvelopeError",
    "TooFewGoodSharesError",
    "TooFewSurvivorsError",
    "UnknownPartyError",
    "VectorShapeError",
    "WeightError",
]


class SecAggError(Exception):
    """Base class of every error raised by :mod:`synthreg.secagg`."""


class ParamsError(SecAggError, ValueError):
    """Round parameters (run, round, participants, threshold, length, scale) are invalid."""


class UnknownPartyError(SecAggError, ValueError):
    """``msp`` is not a participant of the run (``role`` says where it appeared)."""

    def __init__(self, msp: str, role: str) -> None:
        super().__init__(f"{role} {msp!r} is not a participant of this run")
        self.msp = msp
        self.role = role


class AdvertisementError(SecAggError, ValueError):
    """An advertisement of ``msp`` is missing or malformed (public key / seed commitment)."""

    def __init__(self, msp: str, reason: str) -> None:
        super().__init__(f"advertisement of {msp!r}: {reason}")
        self.msp = msp
        self.reason = reason


class NotEnoughAdvertisedError(SecAggError):
    """Fewer than ``need`` (threshold) parties advertised, self included."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"only {have} parties advertised, threshold is {need}")
        self.have = have
        self.need = need


class ShareEnvelopeError(SecAggError):
    """The share envelope from ``sender`` cannot be opened or carries wrong shares."""

    def __init__(self, sender: str, reason: str) -> None:
        super().__init__(f"share envelope from {sender!r}: {reason}")
        self.sender = sender
        self.reason = reason


class BadDealingError(SecAggError):
    """``dealer`` dealt ``recipient`` a share that is off its committed polynomial
    (Feldman check failed) or published malformed commitments; ``kind`` is "seed",
    "key" or "commitments". The recipient is honest by construction: it refuses the
    dealer (``Submit`` "rejected"), it never reveals the bad share."""

    def __init__(self, dealer: str, recipient: str, kind: str, reason: str) -> None:
        super().__init__(f"bad dealing by {dealer!r} to {recipient!r} ({kind}): {reason}")
        self.dealer = dealer
        self.recipient = recipient
        self.kind = kind
        self.reason = reason


class DuplicateSharesError(SecAggError):
    """A second, different share envelope from ``sender`` was presented."""

    def __init__(self, sender: str) -> None:
        super().__init__(f"already holding different shares from {sender!r}")
        self.sender = sender


class MissingShareError(SecAggError):
    """This party holds no ``kind`` ("seed"/"key"/"shares") share from ``owner``."""

    def __init__(self, owner: str, kind: str) -> None:
        super().__init__(f"no {kind} share of {owner!r} held")
        self.owner = owner
        self.kind = kind


class PhaseError(SecAggError):
    """An operation was called out of protocol order (e.g. mask before make_shares)."""


class AlreadyUsedError(SecAggError):
    """A once-per-round operation was repeated with different inputs (would leak)."""


class ErasedError(PhaseError):
    """The party's round secrets were erased (:meth:`Party.erase`)."""


class VectorShapeError(SecAggError, ValueError):
    """A vector has the wrong length, dimension or dtype (``got`` vs ``expected``)."""

    def __init__(self, what: str, got: object, expected: object) -> None:
        super().__init__(f"{what}: got {got}, expected {expected}")
        self.what = what
        self.got = got
        self.expected = expected


class NonFiniteValueError(SecAggError, ValueError):
    """A vector holds NaN/Inf; ``index`` is the first offending element."""

    def __init__(self, index: int) -> None:
        super().__init__(f"non-finite value at index {index}")
        self.index = index


class FixedPointRangeError(SecAggError, ValueError):
    """``|value| >= bound`` at ``index``: the fixed-point sum could overflow int64."""

    def __init__(self, index: int, value: float, bound: float) -> None:
        super().__init__(f"value {value!r} at index {index} outside the fixed-point range |x| < {bound!r}")
        self.index = index
        self.value = value
        self.bound = bound


class WeightError(SecAggError, ValueError):
    """A party's aggregation weight is missing, not finite, or not positive."""

    def __init__(self, msp: str, reason: str) -> None:
        super().__init__(f"weight of {msp!r}: {reason}")
        self.msp = msp
        self.reason = reason


class BlobLengthError(SecAggError, ValueError):
    """A uint64 blob has ``got`` bytes, ``expected`` were required."""

    def __init__(self, got: int, expected: int) -> None:
        super().__init__(f"uint64 blob is {got} bytes, expected {expected}")
        self.got = got
        self.expected = expected


class PeerSetError(SecAggError, ValueError):
    """A peers list is inconsistent (duplicates, self, unknown, or != P minus the party)."""

    def __init__(self, msp: str, reason: str) -> None:
        super().__init__(f"peers of {msp!r}: {reason}")
        self.msp = msp
        self.reason = reason


class RevealConflictError(SecAggError):
    """Revealing would expose both the seed share and the key share of ``msp``."""

    def __init__(self, msp: str) -> None:
        super().__init__(f"refusing to reveal both the seed share and the key share of {msp!r}")
        self.msp = msp


class RevealFormatError(SecAggError, ValueError):
    """The reveal posted by ``revealer`` is malformed (key sets, share size or index)."""

    def __init__(self, revealer: str, reason: str) -> None:
        super().__init__(f"reveal of {revealer!r}: {reason}")
        self.revealer = revealer
        self.reason = reason


class BadRevealError(SecAggError):
    """``revealer`` revealed a ``kind`` share of ``owner`` that fails the owner's Feldman
    commitments. Not raised by :func:`~synthreg.secagg.unmask.unmask` (which ignores
    the share and recombines from others); listed in its report."""

    def __init__(self, revealer: str, owner: str, kind: str) -> None:
        super().__init__(f"{revealer!r} revealed a {kind} share of {owner!r} that fails its dealing commitments")
        self.revealer = revealer
        self.owner = owner
        self.kind = kind


class TooFewGoodSharesError(SecAggError):
    """Only ``have`` revealed ``kind`` shares of ``owner`` verify, ``need`` (t) are required;
    ``bad_revealers`` revealed shares that failed the commitments."""

    def __init__(self, owner: str, kind: str, have: int, need: int, bad_revealers: Sequence[str]) -> None:
        super().__init__(f"only {have} good {kind} shares of {owner!r}, threshold is {need}; "
                         f"bad shares from {sorted(bad_revealers)}")
        self.owner = owner
        self.kind = kind
        self.have = have
        self.need = need
        self.bad_revealers = tuple(sorted(bad_revealers))


class TooFewSurvivorsError(SecAggError):
    """|U| = ``have`` < threshold ``need``: the round is void."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"only {have} survivors, threshold is {need}: round is void")
        self.have = have
        self.need = need


class NotEnoughRevealsError(SecAggError):
    """Only ``have`` survivors revealed, ``need`` (threshold) are required."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"only {have} reveals, threshold is {need}")
        self.have = have
        self.need = need


class RecoveryMismatchError(SecAggError):
    """A secret recombined for ``party`` from ``indices`` failed its public check.

    Every share used passed ``party``'s own Feldman commitments, so ``party`` (the
    dealer) committed to a secret other than the one it advertised: the fault is
    its own. ``suspects`` is kept for callers and is always empty since VSS.
    """

    what = "secret"

    def __init__(self, party: str, indices: Sequence[int], suspects: Sequence[str]) -> None:
        hint = f"; inconsistent shares from {sorted(suspects)}" if suspects else ""
        super().__init__(
            f"{self.what} of {party!r} recombined from share indices {list(indices)} "
            f"does not match its advertisement{hint}"
        )
        self.party = party
        self.indices = tuple(indices)
        self.suspects = tuple(sorted(suspects))


class SeedCommitmentMismatchError(RecoveryMismatchError):
    """The recovered self-mask seed of ``party`` does not match its seed commitment."""

    what = "self-mask seed"


class MaskKeyMismatchError(RecoveryMismatchError):
    """The recovered mask key of dropped ``party`` does not match its advertised public key."""

    what = "mask private key"

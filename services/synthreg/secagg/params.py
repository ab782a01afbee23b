"""Per-round parameters of secure aggregation, validated once (SPEC "Run configuration").

Who builds them: the ledger driver, from the run's ``GetAggregation`` config and the
round number (:meth:`Params.from_config`); every other secagg call takes them.
The same limits are enforced by the ``ganledger`` chaincode (``OpenAggregation``);
checking here too means a bad config fails before any secret is generated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthreg.secagg.errors import ParamsError, UnknownPartyError

__all__ = [
    "MAX_PARTICIPANTS",
    "MAX_ROUND",
    "MAX_SCALE_BITS",
    "MAX_VECTOR_LEN",
    "MIN_SCALE_BITS",
    "Params",
    "default_threshold",
]

MAX_PARTICIPANTS = 255
MAX_ROUND = 0xFFFF_FFFF  # the seed commitment encodes the round as u32be
MAX_VECTOR_LEN = 50_000_000
MIN_SCALE_BITS = 8
MAX_SCALE_BITS = 40
# Run ids: the chaincode's application-key syntax (chaincode/internal/validate KeyPattern).
# MSP ids carry no "/", so the "run/round/sender" envelope ceremony id and the
# "run/round" pairwise context parse unambiguously from the right.
_MSP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RUN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,255}$")


def default_threshold(n: int) -> int:
    """``floor(n/2) + 1``: the threshold the client proposes when none is configured."""
    return n // 2 + 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Params:
    """Public parameters of one aggregation round.

    ``participants`` is the sorted tuple of MSP ids; a party's Shamir share index is
    1 + its position (:meth:`share_index`). Raises :class:`ParamsError` on
    construction when any field violates the SPEC limits.
    """

    run: str
    round: int
    participants: tuple[str, ...]
    threshold: int
    vector_len: int
    scale_bits: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.run, str) or not _RUN_RE.match(self.run):
            raise ParamsError(f"run id {self.run!r} does not match {_RUN_RE.pattern}")
        if not _is_int(self.round) or not (0 <= self.round <= MAX_ROUND):
            raise ParamsError(f"round {self.round!r} outside 0..{MAX_ROUND}")
        if not isinstance(self.participants, tuple):
            raise ParamsError("participants must be a tuple")
        n = len(self.participants)
        if not (2 <= n <= MAX_PARTICIPANTS):
            raise ParamsError(f"{n} participants, need 2..{MAX_PARTICIPANTS}")
        for msp in self.participants:
            if not isinstance(msp, str) or not _MSP_RE.match(msp):
                raise ParamsError(f"participant {msp!r} is not a valid MSP id ({_MSP_RE.pattern})")
        if list(self.participants) != sorted(set(self.participants)):
            raise ParamsError(f"participants must be sorted and unique: {list(self.participants)}")
        if not _is_int(self.threshold) or not (n // 2 < self.threshold <= n):
            raise ParamsError(f"threshold {self.threshold!r} outside {n // 2 + 1}..{n} for {n} participants")
        if not _is_int(self.vector_len) or not (0 < self.vector_len <= MAX_VECTOR_LEN):
            raise ParamsError(f"vector_len {self.vector_len!r} outside 1..{MAX_VECTOR_LEN}")
        if not _is_int(self.scale_bits) or not (MIN_SCALE_BITS <= self.scale_bits <= MAX_SCALE_BITS):
            raise ParamsError(f"scale_bits {self.scale_bits!r} outside {MIN_SCALE_BITS}..{MAX_SCALE_BITS}")

    @property
    def n(self) -> int:
        """Number of participants."""
        return len(self.participants)

    def share_index(self, msp: str) -> int:
        """Shamir x-index of ``msp``: 1 + position in the sorted participants.

        Raises :class:`UnknownPartyError` for a non-participant.
        """
        try:
            return self.participants.index(msp) + 1
        except ValueError as exc:
            raise UnknownPartyError(msp, "party") from exc

    def require_participant(self, msp: str, role: str) -> None:
        """Raise :class:`UnknownPartyError` (naming ``role``) unless ``msp`` participates."""
        if msp not in self.participants:
            raise UnknownPartyError(msp, role)

    @property
    def pairwise_context(self) -> bytes:
        """``f"{run}/{round}"``: the context of :func:`derive_pairwise_seed` (SPEC)."""
        return f"{self.run}/{self.round}".encode()

    @classmethod
    def from_config(cls, run: str, round: int, config: Mapping[str, Any]) -> Params:
        """Build from the ``OpenAggregation`` config JSON (extra keys such as
        ``round_timeout_s`` are ignored). Raises :class:`ParamsError`."""
        try:
            participants = config["participants"]
            if not isinstance(participants, list | tuple):
                raise TypeError("participants must be a list")
            return cls(
                run=run,
                round=round,
                participants=tuple(participants),
                threshold=config["threshold"],
                vector_len=config["vector_len"],
                scale_bits=config.get("scale_bits", 32),
            )
        except (KeyError, TypeError) as exc:
            raise ParamsError(f"bad aggregation config: {exc!r}") from exc

"""MergerApp._write: a secure-aggregation write that failed without writing anything
leaves the merger out of that round (it takes the agreed average from the ledger), as a
phase closed without it does; every other failure still ends the run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from synthreg.apps.merger import MergerApp
from synthreg.chain.secagg import AggregationLedgerError, RoundClosedError
from synthreg.ledger.errors import (
    ChaincodeInfo,
    CommitError,
    CommitStatusError,
    EndorseChaincodeError,
    EndorseError,
    GatewayError,
    SubmitError,
)
from synthreg.ledger.sync import wrote_nothing

MISMATCH = EndorseError("ABORTED: failed to collect enough transaction endorsements | 10.0.0.1:7051 (Registry1MSP): "
                        "ProposalResponsePayloads do not match")


def _failed(cause: Exception, cls: type[AggregationLedgerError] = AggregationLedgerError) -> AggregationLedgerError:
    """An aggregation error raised from ``cause``, as LedgerMerger._submit raises it."""
    try:
        raise cls("Submit", "Registry4MSP", "", str(cause)) from cause
    except AggregationLedgerError as exc:
        return exc


@pytest.mark.parametrize(("cause", "nothing"), [
    (MISMATCH, True),
    (SubmitError("no orderer accepted it"), True),
    (EndorseChaincodeError("refused", ChaincodeInfo("ACCESS_DENIED", "ACCESS_DENIED: not a merger")), False),
    (CommitStatusError("commit status lost"), False),  # it may have committed
    (CommitError("t", 11, 3), False),
    (GatewayError("evaluate failed"), False),
])
def test_only_a_write_no_peer_endorsed_or_no_orderer_took_wrote_nothing(cause: Exception, nothing: bool) -> None:
    assert wrote_nothing(cause) is nothing


class _Merger:
    """The MergerApp attributes _write uses; records the rounds it was left out of."""

    def __init__(self) -> None:
        self.observed: list[tuple[int, str]] = []

    def _observe(self, merger: Any, rnd: int, run: str, why: str) -> np.ndarray:
        self.observed.append((rnd, why))
        return np.zeros(2, np.float32)


def _raise(exc: Exception) -> Any:
    def write() -> None:
        raise exc
    return write


def test_a_write_that_wrote_nothing_leaves_the_merger_out_of_the_round() -> None:
    app = _Merger()
    merger = SimpleNamespace()
    assert MergerApp._write(app, merger, 3, "r", lambda: None, "the submit phase") is None  # type: ignore[arg-type]
    assert app.observed == []
    left = MergerApp._write(app, merger, 3, "r", _raise(_failed(MISMATCH)), "the submit phase")  # type: ignore[arg-type]
    assert left is not None and app.observed[-1][0] == 3
    assert "its write in the submit phase failed and wrote nothing" in app.observed[-1][1]
    assert "ProposalResponsePayloads do not match" in app.observed[-1][1]
    MergerApp._write(app, merger, 4, "r", _raise(_failed(MISMATCH, RoundClosedError)),  # type: ignore[arg-type]
                     "the share phase")
    assert app.observed[-1] == (4, "the share phase closed without it")


def test_a_write_the_chaincode_refused_or_that_may_have_landed_still_ends_the_run() -> None:
    app = _Merger()
    refused = _failed(EndorseChaincodeError("refused", ChaincodeInfo("ACCESS_DENIED", "ACCESS_DENIED: not a merger")))
    with pytest.raises(AggregationLedgerError, match="refused"):
        MergerApp._write(app, SimpleNamespace(), 3, "r", _raise(refused), "the submit phase")  # type: ignore[arg-type]
    with pytest.raises(AggregationLedgerError):
        MergerApp._write(app, SimpleNamespace(), 3, "r",  # type: ignore[arg-type]
                         _raise(_failed(CommitStatusError("lost"))), "the submit phase")
    assert app.observed == []

"""MergerApp._write: a secure-aggregation write refused as "closed", or that failed without
writing anything, is judged by the round on the own peer: written again while the phase is
open, in if it landed after all, out of the round (the agreed average from the ledger) once
the phase closed without it; every other failure still ends the run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from synthreg.apps.merger import MergerApp, phase_standing
from synthreg.chain.secagg import AggregationLedgerError, AlreadyDoneError, RoundClosedError
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

    msp = "Registry4MSP"

    def __init__(self) -> None:
        self.observed: list[tuple[int, str]] = []
        self.details: list[str] = []

    def _observe(self, merger: Any, rnd: int, run: str, why: str) -> np.ndarray:
        self.observed.append((rnd, why))
        return np.zeros(2, np.float32)

    def set_status(self, detail: str, force: bool) -> None:
        self.details.append(detail)


def _round(status: str = "open", advertised: tuple[str, ...] = ("Registry1MSP", "Registry2MSP", "Registry4MSP"),
           shares: tuple[str, ...] = (), submissions: tuple[str, ...] = (),
           votes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"status": status, "advertised": {m: {} for m in advertised}, "shares": {m: {} for m in shares},
            "submissions": list(submissions), "votes": {"advertise": [], "shares": [], "submit": [], **(votes or {})}}


class _Ledger:
    """A LedgerMerger whose state() answers the rounds in turn (an exception is raised)."""

    def __init__(self, *states: dict[str, Any] | Exception) -> None:
        self.states = list(states)

    def state(self, rnd: int) -> dict[str, Any]:
        st = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(st, Exception):
            raise st
        return st


def _writes(*outcomes: Exception | None) -> Any:
    """A write that raises the outcomes in turn (None: it lands); counts its calls."""
    todo = list(outcomes)

    def write() -> None:
        write.calls += 1  # type: ignore[attr-defined]
        exc = todo.pop(0) if todo else None
        if exc is not None:
            raise exc
    write.calls = 0  # type: ignore[attr-defined]
    return write


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def _write(app: _Merger, ledger: _Ledger, write: Any, phase: str = "submit", patience: float = 120.0) -> Any:
    clock = _Clock()
    return MergerApp._write(app, ledger, 3, "r", write, phase, 3,  # type: ignore[arg-type]
                            patience=patience, clock=clock, sleep=clock.sleep)


SHARED = ("Registry1MSP", "Registry2MSP", "Registry4MSP")


def test_a_write_that_wrote_nothing_is_written_again_while_the_phase_is_open() -> None:
    app, write = _Merger(), _writes(_failed(MISMATCH), _failed(SubmitError("no orderer")), None)
    assert _write(app, _Ledger(_round(shares=SHARED)), write) is None
    assert write.calls == 3 and app.observed == [] and len(app.details) == 2
    assert "ProposalResponsePayloads do not match" in app.details[0]


def test_a_refusal_as_closed_by_a_lagging_peer_is_written_again_while_the_phase_is_open() -> None:
    """Submit refused "blob ... not stored: PutBlob it first" by a peer that had not yet
    committed the PutBlob: the round is open on the own peer, so the merger writes
    again instead of leaving (the stall of the host-cut test, CI at 8ef4187)."""
    app = _Merger()
    lag = _failed(EndorseChaincodeError("refused", ChaincodeInfo("PRECONDITION_FAILED", "blob not stored")),
                  RoundClosedError)
    write = _writes(lag, lag, None)
    assert _write(app, _Ledger(_round(shares=SHARED, votes={"submit": ["Registry1MSP", "Registry2MSP"]})),
                  write) is None
    assert write.calls == 3 and app.observed == []


def test_a_phase_closed_without_it_leaves_the_merger_out_of_the_round() -> None:
    app = _Merger()
    closed = _failed(MISMATCH, RoundClosedError)
    assert _write(app, _Ledger(_round(shares=SHARED, submissions=SHARED[:2], status="frozen")),
                  _writes(closed)) is not None
    assert app.observed[-1][0] == 3 and "the submit phase closed without it" in app.observed[-1][1]
    _write(app, _Ledger(_round(shares=SHARED[:2], votes={"shares": list(SHARED[:3])})),
           _writes(_failed(SubmitError("no orderer"))), "shares")
    assert "the shares phase closed without it" in app.observed[-1][1]
    assert "no orderer" in app.observed[-1][1]


def test_a_write_that_landed_after_all_is_in() -> None:
    """No orderer confirmed it, yet its entry is on the ledger (the orderer died after
    taking it): the merger goes on as if the write had answered."""
    app = _Merger()
    assert _write(app, _Ledger(_round(shares=SHARED, submissions=("Registry4MSP",))),
                  _writes(_failed(SubmitError("broadcast stream closed")))) is None
    assert app.observed == []


def test_a_duplicate_refusal_is_the_earlier_attempt_landing() -> None:
    """Sent again after a failure, the write is refused ALREADY_EXISTS by a peer that has the
    earlier attempt; once the own peer shows the entry the merger is in (it does not leave)."""
    app = _Merger()
    dup = _failed(EndorseChaincodeError("refused", ChaincodeInfo("ALREADY_EXISTS", "advertisement exists")),
                  AlreadyDoneError)
    ledger = _Ledger(_round(advertised=SHARED[:2]), _round())  # the own peer a block behind, then caught up
    assert _write(app, ledger, _writes(dup, dup), "advertise") is None
    assert app.observed == [] and len(app.details) == 1


def test_advertise_sent_again_is_the_same_advertisement() -> None:
    """A retried Advertise reuses the round's party (kept before the write), so an earlier
    attempt that landed and the retry carry one key and one seed commitment."""
    from synthreg.chain.secagg import AggregationConfig, LedgerMerger

    merger = LedgerMerger(None, "Registry1MSP", "run-1",  # type: ignore[arg-type]
                          AggregationConfig.default(list(SHARED), 4))
    sent: list[tuple[str, ...]] = []
    merger._submit = lambda fn, *args, **kw: sent.append(args) or "tx"  # type: ignore[method-assign]
    merger.advertise(2)
    merger.advertise(2)
    assert len(sent) == 2 and sent[0] == sent[1]
    merger.forget(2)
    merger.advertise(2)
    assert sent[2] != sent[0]  # a new round party after forget


def test_a_phase_that_stays_open_past_the_patience_leaves_the_merger_out() -> None:
    """Its own peer down (the round unreadable), then open: written again for ``patience``
    seconds, then out of the round; every failure is reported in the status."""
    app = _Merger()
    write = _writes(*[_failed(MISMATCH)] * 100)
    unreadable = AggregationLedgerError("GetRound", "Registry4MSP", "", "UNAVAILABLE")
    assert _write(app, _Ledger(unreadable, _round(shares=SHARED)), write, patience=10.0) is not None
    assert write.calls == 12 and "failed for 10s while the phase stayed open" in app.observed[-1][1]


@pytest.mark.parametrize(("phase", "state", "standing"), [
    ("advertise", _round(advertised=("Registry1MSP",)), "open"),
    ("advertise", _round(), "in"),
    ("advertise", _round(advertised=SHARED[:2], votes={"advertise": list(SHARED)}), "closed"),
    ("advertise", _round(advertised=SHARED[:2], shares=SHARED[:1]), "closed"),
    ("shares", _round(shares=SHARED[:2], votes={"shares": list(SHARED[:2])}), "open"),  # 2 votes < t = 3
    ("shares", _round(shares=SHARED[:2], submissions=SHARED[:1]), "closed"),
    ("submit", _round(shares=SHARED, submissions=SHARED[:2], votes={"submit": list(SHARED)}), "closed"),
    ("submit", _round(shares=SHARED, submissions=SHARED[:2], status="void"), "closed"),
    ("submit", _round(shares=SHARED, submissions=SHARED[:2]), "open"),
])
def test_phase_standing_follows_the_chaincode(phase: str, state: dict[str, Any], standing: str) -> None:
    assert phase_standing(state, "Registry4MSP", phase, 3) == standing


def test_a_write_the_chaincode_refused_or_that_may_have_landed_still_ends_the_run() -> None:
    app = _Merger()
    refused = _failed(EndorseChaincodeError("refused", ChaincodeInfo("ACCESS_DENIED", "ACCESS_DENIED: not a merger")))
    with pytest.raises(AggregationLedgerError, match="refused"):
        _write(app, _Ledger(_round()), _writes(refused))
    with pytest.raises(AggregationLedgerError):
        _write(app, _Ledger(_round()), _writes(_failed(CommitStatusError("lost"))))
    assert app.observed == []


class _Restarted:
    """What MergerApp._finished_before reads: the record and the round on the own peer."""

    msp = "Registry4MSP"

    def __init__(self, record: dict[str, Any] | None, state: dict[str, Any] | None) -> None:
        self.answers = {"GetRecord": record, "GetRound": state}

    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        return self.answers[fn]


@pytest.mark.parametrize(("record", "state", "finished"), [
    (None, {"agreed": True, "average_sha256": "a" * 64}, False),  # not recorded: not finished
    ("a", {"agreed": True, "average_sha256": "a" * 64}, True),
    ("a", {"agreed": None, "status": "frozen"}, False),  # posted with its result, not agreed yet
    ("a", {"agreed": True, "average_sha256": "b" * 64}, False),  # agreed on another average
])
def test_a_restarted_merger_skips_a_round_only_once_it_is_agreed_on_its_record(
        record: str | None, state: dict[str, Any], finished: bool) -> None:
    """The round record goes on the ledger with the merger's result, before the agreement:
    after a restart it means the round is done only if the ledger agreed on that average."""
    value = None if record is None else {"value": {"round": 3, "msp": "Registry4MSP", "n_params": 4,
                                                   "weights_sha256": "c" * 64, "average_sha256": record * 64,
                                                   "audit_ct_sha256": None}}
    app = _Restarted(value, state)
    got = MergerApp._finished_before(app, "run-1", 3)  # type: ignore[arg-type]
    assert got == ("a" * 64 if finished else None)

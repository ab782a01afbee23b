"""The chain clients build their typed errors from the code the ledger client parsed (fast, no network).

The fake Gateway only scripts rich gRPC failures as the real Gateway encodes
them; it runs no chaincode (real refusals: tests/integration/).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from synthreg.chain import secagg
from synthreg.chain.secagg import (
    AggregationConfig,
    AggregationLedgerError,
    AlreadyDoneError,
    LedgerMerger,
    RoundClosedError,
    open_aggregation,
)
from synthreg.chain.steps import LedgerSteps, StepLedgerError
from synthreg.ledger import ChaincodeError, Contract, Gateway, SubmitError, ecdsa_signer, sync
from synthreg.ledger.errors import ErrorDetail
from synthreg.ledger.testing import FakeFailure, FakeGateway, FakeGatewayServicer, make_test_identity, serve_fake

IDENTITY, KEY = make_test_identity("Registry1MSP", role="merger")
ENDORSE_MSG = "failed to endorse transaction, see attached details for more info"
CONFIG = AggregationConfig.default(["Registry1MSP", "Registry2MSP", "Registry3MSP"], 4)


def _refusal(text: str) -> FakeFailure:
    return FakeFailure(grpc.StatusCode.ABORTED, ENDORSE_MSG,
                       (ErrorDetail("127.0.0.1:8111", "Registry1MSP", f"chaincode response 500, {text}"),))


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    with serve_fake(FakeGatewayServicer()) as running:
        yield running


@pytest.fixture
def ganledger(fake: FakeGateway) -> Contract:
    return Gateway(IDENTITY, ecdsa_signer(KEY), fake.channel, default_timeout=5.0).network("gan").contract("ganledger")


@pytest.mark.parametrize(
    ("text", "cls", "code"),
    [
        ("ALREADY_EXISTS: aggregation run r1 is already open", AlreadyDoneError, "ALREADY_EXISTS"),
        ("PRECONDITION_FAILED: run r1 round 0 is frozen", RoundClosedError, "PRECONDITION_FAILED"),
        ("ACCESS_DENIED: caller Registry1MSP role \"merger\" not allowed", AggregationLedgerError, "ACCESS_DENIED"),
    ],
)
def test_aggregation_errors_come_from_the_parsed_chaincode_code(
    fake: FakeGateway, ganledger: Contract, text: str, cls: type[AggregationLedgerError], code: str
) -> None:
    fake.servicer.failures["Endorse"] = _refusal(text)
    with pytest.raises(AggregationLedgerError) as err:
        open_aggregation(ganledger, "Registry1MSP", "r1", CONFIG)
    assert type(err.value) is cls and err.value.code == code and err.value.detail == text
    assert str(err.value) == f"OpenAggregation by Registry1MSP failed: {text}"
    assert isinstance(err.value.__cause__, ChaincodeError)


def test_aggregation_failure_outside_the_chaincode_has_no_code(fake: FakeGateway, ganledger: Contract,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "ORDERER_PATIENCE_S", 0.0)  # no orderer takes it: raised at once
    fake.servicer.failures["Submit"] = FakeFailure(grpc.StatusCode.UNAVAILABLE, "orderer unreachable")
    with pytest.raises(AggregationLedgerError) as err:
        open_aggregation(ganledger, "Registry1MSP", "r1", CONFIG)
    assert type(err.value) is AggregationLedgerError and err.value.code == ""
    assert isinstance(err.value.__cause__, SubmitError) and "orderer unreachable" in err.value.detail


def test_step_errors_come_from_the_parsed_chaincode_code(fake: FakeGateway, ganledger: Contract) -> None:
    fake.servicer.failures["Evaluate"] = FakeFailure(
        grpc.StatusCode.UNKNOWN, "evaluate call to endorser returned error: chaincode response 500, "
        "NOT_FOUND: no step r1/Registry1MSP/0/0")
    steps = LedgerSteps("r1", [], ["Registry1MSP"])
    with pytest.raises(StepLedgerError) as err:
        steps._step(ganledger, "Registry1MSP", 0, 0)
    assert err.value.code == "NOT_FOUND" and err.value.detail == "NOT_FOUND: no step r1/Registry1MSP/0/0"
    assert str(err.value) == "GetStep for Registry1MSP failed: NOT_FOUND: no step r1/Registry1MSP/0/0"


def _late_voter(statuses: list[str], monkeypatch: pytest.MonkeyPatch) -> LedgerMerger:
    """A merger whose VoteClose other peers refuse (the round froze meanwhile) while its
    own peer answers GetRound with ``statuses`` in turn (behind, then caught up)."""
    merger = LedgerMerger(None, "Registry3MSP", "run-1", CONFIG)  # type: ignore[arg-type]

    def refused(fn: str, *args: str) -> str:
        raise RoundClosedError(fn, "Registry3MSP", "PRECONDITION_FAILED", "round run-1/2 is frozen")

    monkeypatch.setattr(merger, "_submit", refused)
    monkeypatch.setattr(merger, "state", lambda rnd: {"status": statuses.pop(0) if len(statuses) > 1 else statuses[0]})
    monkeypatch.setattr(secagg.time, "sleep", lambda _s: None)
    return merger


def test_a_vote_refused_as_late_waits_for_the_own_peer_to_see_the_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back from a network cut, a merger votes on a round the others froze meanwhile; its
    own peer still says "open" for a while. That is a late vote (False: left out of the
    round), not a failure of the run (a CI failure of the host cut test)."""
    assert _late_voter(["open", "open", "frozen"], monkeypatch).vote(2, "shares") is False


def test_a_vote_refused_while_the_own_peer_never_sees_a_freeze_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secagg, "PEER_CATCH_UP_S", 0.0)
    with pytest.raises(RoundClosedError, match="frozen"):
        _late_voter(["open"], monkeypatch).vote(2, "shares")


def test_a_vote_refused_by_a_peer_without_the_voters_entry_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registry1's peer had not committed Registry2's advertisement yet and refused its vote
    ("has not advertised"); the round is open on the own peer, so the vote is sent again
    rather than waiting for a freeze that two votes short of t never bring (two mergers
    ended the host-cut run on it, stop 23). Closed by others' votes meanwhile: True."""
    merger = LedgerMerger(None, "Registry2MSP", "run-1", CONFIG)  # type: ignore[arg-type]
    sent: list[str] = []

    def lagging(fn: str, *args: str) -> str:
        sent.append(fn)
        if len(sent) < 3:
            raise RoundClosedError(fn, "Registry2MSP", "PRECONDITION_FAILED",
                                   "Registry2MSP has not advertised in round run-1/2")
        return "tx"

    open_round = {"status": "open", "advertised": {"Registry2MSP": {}}, "shares": {}, "submissions": [],
                  "votes": {"advertise": ["Registry1MSP"], "shares": [], "submit": []}}
    monkeypatch.setattr(merger, "_submit", lagging)
    monkeypatch.setattr(merger, "state", lambda rnd: open_round)
    monkeypatch.setattr(secagg.time, "sleep", lambda _s: None)
    assert merger.vote(2, "advertise") is True and sent == ["VoteClose"] * 3
    sent.clear()
    closed = {**open_round, "votes": {**open_round["votes"], "advertise": ["Registry1MSP", "Registry3MSP"]}}
    monkeypatch.setattr(merger, "state", lambda rnd: closed)  # t = 2 of CONFIG voted without it
    assert merger.vote(2, "advertise") is True and sent == ["VoteClose"]


def test_a_result_that_landed_although_its_answer_was_lost_is_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host cut off mid-endorsement: PostResult fails, yet the write landed; the retry
    is refused ALREADY_EXISTS. The merger's own hash on the ledger makes that a success
    (a CI host-cut run failed the merger's run on it and left its G and D waiting);
    another hash there stays an error."""
    merger = LedgerMerger(None, "Registry3MSP", "run-1", CONFIG)  # type: ignore[arg-type]
    avg = np.zeros(4, dtype=np.float32)

    def exists(fn: str, *args: str) -> str:
        raise AlreadyDoneError(fn, "Registry3MSP", "ALREADY_EXISTS", 'result "run-1/2/Registry3MSP" already exists')

    posted: dict[str, str] = {}
    monkeypatch.setattr(merger, "_submit", exists)
    monkeypatch.setattr(merger, "_unmask", lambda rnd, state, weights, mine: (avg, "a" * 64))
    monkeypatch.setattr(merger, "state", lambda rnd: {"survivors": ["Registry1MSP", "Registry3MSP"], "dropped": [],
                                                      "results": posted})
    posted["Registry3MSP"] = "a" * 64
    assert merger.result(2).average_sha256 == "a" * 64
    posted["Registry3MSP"] = "b" * 64
    with pytest.raises(AlreadyDoneError):
        merger.result(2)


def _posting(monkeypatch: pytest.MonkeyPatch) -> tuple[LedgerMerger, list[tuple[str, ...]], np.ndarray]:
    """A merger whose round average is ones (hash "a" * 64) and whose writes are recorded."""
    merger = LedgerMerger(None, "Registry3MSP", "run-1", CONFIG)  # type: ignore[arg-type]
    avg = np.ones(4, dtype=np.float32)
    sent: list[tuple[str, ...]] = []
    monkeypatch.setattr(merger, "_submit", lambda fn, *args: sent.append((fn, *args)) or "tx")
    monkeypatch.setattr(merger, "_unmask", lambda rnd, state, weights, mine: (avg, "a" * 64))
    return merger, sent, avg


RESULT_STATE = {"survivors": ["Registry1MSP", "Registry3MSP"], "dropped": []}


def test_a_result_carries_the_round_record_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """``record(average, sha)`` goes into PostResult's JSON (one transaction: the result and
    the registry's trail entry); without it the JSON is the bare hash, as before."""
    merger, sent, avg = _posting(monkeypatch)
    state = RESULT_STATE
    seen: list[tuple[np.ndarray, str]] = []

    def record(average: np.ndarray, sha: str) -> dict[str, object]:
        seen.append((average, sha))
        return {"round": 2, "average_sha256": sha}

    merger.result(2, state=state, record=record)
    assert seen[0][1] == "a" * 64 and seen[0][0] is avg
    assert sent[-1] == ("PostResult", "run-1", "2",
                        json.dumps({"average_sha256": "a" * 64, "record": {"average_sha256": "a" * 64, "round": 2}},
                                   sort_keys=True))
    merger.result(2, state=state)
    assert sent[-1] == ("PostResult", "run-1", "2", json.dumps({"average_sha256": "a" * 64}))


def test_a_result_advertises_the_next_round_or_else_goes_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``advertise_next``: the result carries the next round's advert (the party kept for
    that round), whose ``advertise`` then writes nothing. The advert refused (the next
    round's advertise phase closed without this merger): the result is posted alone and
    the next round's ``advertise`` sends the same party's advert as usual."""
    merger, sent, _avg = _posting(monkeypatch)
    state = RESULT_STATE
    merger.result(2, state=state, advertise_next=True)
    posted = json.loads(sent[-1][3])
    adv = merger._parties[3].advertisement()
    assert posted["next"] == {"public_key": base64.b64encode(adv.public_key).decode(), "seed_commit": adv.seed_commit}
    assert merger.advertise(3) == "" and len(sent) == 1  # advertised with the result

    def advert_refused(fn: str, *args: str) -> str:
        if "next" in json.loads(args[2]):
            raise RoundClosedError(fn, "Registry3MSP", "PRECONDITION_FAILED", "advertise phase of run-1/4 is closed")
        sent.append((fn, *args))
        return "tx"

    monkeypatch.setattr(merger, "_submit", advert_refused)
    merger.result(3, state=state, advertise_next=True)
    assert json.loads(sent[-1][3]) == {"average_sha256": "a" * 64} and 3 not in merger._parties
    kept = merger._parties[4].advertisement()
    monkeypatch.setattr(merger, "_submit", lambda fn, *args: sent.append((fn, *args)) or "tx")
    merger.advertise(4)
    assert sent[-1] == ("Advertise", "run-1", "4", base64.b64encode(kept.public_key).decode(), kept.seed_commit)

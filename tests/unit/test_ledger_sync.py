"""wait_for_block: polls every organisation's peer height (fake qscc, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from fabric_protos.common import ledger_pb2

from synthreg.ledger.sync import PeerLagError, wait_for_block


@dataclass
class _Qscc:
    heights: dict[str, list[int]]  # successive heights each org's peer reports
    calls: list[str] = field(default_factory=list)

    def evaluate(self, fn: str, channel: str, endorsing_orgs: list[str]) -> bytes:
        assert (fn, channel) == ("GetChainInfo", "gan")
        (org,) = endorsing_orgs
        self.calls.append(org)
        seq = self.heights[org]
        height = seq.pop(0) if len(seq) > 1 else seq[0]
        return ledger_pb2.BlockchainInfo(height=height).SerializeToString()


@dataclass
class _Network:
    qscc: _Qscc
    name: str = "gan"

    def contract(self, name: str) -> _Qscc:
        assert name == "qscc"
        return self.qscc


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def test_returns_once_every_peer_has_the_block() -> None:
    qscc = _Qscc({"A": [5, 6], "B": [4, 5, 7]})
    clock = _Clock()
    wait_for_block(_Network(qscc), ["A", "B"], block=5, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    # A: height 5 (no block 5 yet) then 6; B: 4, 5, then 7
    assert qscc.calls == ["A", "A", "B", "B", "B"]


def test_a_lagging_peer_is_named_after_the_timeout() -> None:
    qscc = _Qscc({"A": [9], "B": [3]})
    clock = _Clock()
    with pytest.raises(PeerLagError) as err:
        wait_for_block(_Network(qscc), ["A", "B"], block=5, timeout=1.0, clock=clock,  # type: ignore[arg-type]
                       sleep=clock.sleep)
    assert (err.value.org, err.value.block, err.value.height) == ("B", 5, 3)
    assert "peer of B" in str(err.value) and "block 5" in str(err.value)


class _FlakyContract:
    """Raises the queued errors from submit, then succeeds in block 7."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0
        self.network = _Network(_Qscc({"A": [8], "B": [8], "C": [8]}))

    def submit(self, fn: str, *args: str):
        from synthreg.ledger.contract import SubmitResult

        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return SubmitResult(tx_id="t", result=b"", block_number=7, status=0)


def test_submit_synced_retries_only_transient_races() -> None:
    from synthreg.ledger import CommitError, GatewayError
    from synthreg.ledger.sync import submit_synced

    no_sleep = lambda s: None  # noqa: E731
    flaky = _FlakyContract([CommitError("t", 11, 3), GatewayError("ABORTED: ProposalResponsePayloads do not match"),
                            CommitError("t", 12, 4)])
    res = submit_synced(flaky, "Submit", "x", orgs=["A"], sleep=no_sleep)  # type: ignore[arg-type]
    assert (res.block_number, flaky.calls) == (7, 4)
    assert flaky.network.qscc.calls == ["A"]  # then waited for A's peer to have block 7

    endorsement = _FlakyContract([GatewayError("ABORTED: PRECONDITION_FAILED: round frozen")])
    with pytest.raises(GatewayError):
        submit_synced(endorsement, "Submit", orgs=["A"], sleep=no_sleep)  # type: ignore[arg-type]
    assert endorsement.calls == 1
    invalid = _FlakyContract([CommitError("t", 10, 3)])  # ENDORSEMENT_POLICY_FAILURE: not a race
    with pytest.raises(CommitError):
        submit_synced(invalid, "Submit", orgs=["A"], sleep=no_sleep)  # type: ignore[arg-type]
    always = _FlakyContract([CommitError("t", 11, i) for i in range(5)])
    with pytest.raises(CommitError):
        submit_synced(always, "Submit", orgs=["A"], retries=2, sleep=no_sleep)  # type: ignore[arg-type]
    assert always.calls == 3


def test_refusals_by_other_orgs_peers_only_are_endorsed_again() -> None:
    """The caller's own peer endorsed (it had the block the caller acted on); peers of
    other orgs still a block behind refused: endorse again. A refusal that includes the
    caller's own peer is a verdict, not a lag."""
    from types import SimpleNamespace

    from synthreg.ledger import GatewayError
    from synthreg.ledger.errors import ErrorDetail
    from synthreg.ledger.sync import submit_synced

    def short(*msps: str) -> GatewayError:
        return GatewayError("ABORTED: failed to collect enough transaction endorsements", details=tuple(
            ErrorDetail(f"{m}:7051", m, "chaincode response 500, PRECONDITION_FAILED: no generator step waiting")
            for m in msps))

    def contract(errors: list[Exception]) -> _FlakyContract:
        c = _FlakyContract(errors)
        c.network.gateway = SimpleNamespace(identity=SimpleNamespace(msp_id="A"))  # type: ignore[attr-defined]
        return c

    lagging = contract([short("B", "C"), short("B")])
    assert submit_synced(lagging, "Step", orgs=(), sleep=lambda s: None).block_number == 7  # type: ignore[arg-type]
    assert lagging.calls == 3
    verdict = contract([short("A", "B")])
    with pytest.raises(GatewayError):
        submit_synced(verdict, "Step", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    assert verdict.calls == 1


def test_refusing_peers_are_waited_for_until_they_have_the_own_peers_height() -> None:
    """Peer B refused while it lagged 3 blocks behind the caller's peer A: the next
    endorsement is sent once B reports A's height, not after a fixed pause."""
    from types import SimpleNamespace

    from synthreg.ledger import GatewayError
    from synthreg.ledger.errors import ErrorDetail
    from synthreg.ledger.sync import submit_synced

    refused = GatewayError("ABORTED: failed to collect enough transaction endorsements", details=(
        ErrorDetail("B:7051", "B", "chaincode response 500, PRECONDITION_FAILED: round r/1 is not frozen yet"),))
    c = _FlakyContract([refused])
    c.network = _Network(_Qscc({"A": [8], "B": [5, 6, 7, 8]}))
    c.network.gateway = SimpleNamespace(identity=SimpleNamespace(msp_id="A"))  # type: ignore[attr-defined]
    clock = _Clock()
    assert submit_synced(c, "Reveal", orgs=(), sleep=clock.sleep).block_number == 7  # type: ignore[arg-type]
    assert c.network.qscc.calls == ["A", "B", "B", "B", "B"]  # B asked until it had height 8
    assert c.calls == 2


class _Ledger:
    """qscc of a peer whose blocks hold ``txs`` (tx id -> (validation code, block))."""

    name = "gan"

    def __init__(self, txs: dict[str, tuple[int, int]]) -> None:
        self.txs = txs

    def contract(self, name: str) -> _Ledger:
        return self

    def evaluate(self, fn: str, channel: str, tx_id: str) -> bytes:
        from fabric_protos.common import common_pb2
        from fabric_protos.peer import transaction_pb2

        from synthreg.ledger import EvaluateError

        if tx_id not in self.txs:
            raise EvaluateError(f"Failed to get transaction with id {tx_id}")
        code, block = self.txs[tx_id]
        if fn == "GetTransactionByID":
            return transaction_pb2.ProcessedTransaction(validationCode=code).SerializeToString()
        return common_pb2.Block(header=common_pb2.BlockHeader(number=block)).SerializeToString()


def test_orderer_failover_is_ridden_out() -> None:
    """No orderer took the transaction: submit afresh. Its commit status was lost: look it
    up in the ledger; committed valid -> done, invalid -> CommitError, absent -> afresh."""
    from synthreg.ledger import CommitError, CommitStatusError, SubmitError
    from synthreg.ledger.sync import submit_synced

    def contract(errors: list[Exception], txs: dict[str, tuple[int, int]]) -> _FlakyContract:
        c = _FlakyContract(errors)
        c.network = _Ledger(txs)  # type: ignore[assignment]
        return c

    unavailable = contract([SubmitError("UNAVAILABLE: no orderers could successfully process transaction")] * 2, {})
    assert submit_synced(unavailable, "Step", orgs=(), sleep=lambda s: None).block_number == 7  # type: ignore[arg-type]
    assert unavailable.calls == 3
    landed = contract([CommitStatusError("DEADLINE_EXCEEDED", tx_id="lost")], {"lost": (0, 42)})
    res = submit_synced(landed, "Step", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    assert (res.tx_id, res.block_number, landed.calls) == ("lost", 42, 1)  # not submitted twice
    invalid = contract([CommitStatusError("DEADLINE_EXCEEDED", tx_id="bad")], {"bad": (10, 43)})
    with pytest.raises(CommitError):
        submit_synced(invalid, "Step", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    # committed invalid by a read race (code 12, PHANTOM_READ_CONFLICT): endorsed afresh, as
    # when the status arrives (a merger ended a run on it: the host-cut test, CI at 854cf12)
    raced = contract([CommitStatusError("DEADLINE_EXCEEDED", tx_id="raced")], {"raced": (12, 44)})
    assert submit_synced(raced, "Submit", orgs=(), sleep=lambda s: None).block_number == 7  # type: ignore[arg-type]
    assert raced.calls == 2
    clock = iter(range(0, 1000, 5))
    gone = contract([CommitStatusError("DEADLINE_EXCEEDED", tx_id="gone")], {})
    from synthreg.ledger import sync
    orig = sync.committed
    try:
        sync.committed = lambda c, tx, **kw: orig(c, tx, clock=lambda: float(next(clock)), **kw)  # type: ignore[assignment]
        assert submit_synced(gone, "Step", orgs=(), sleep=lambda s: None).block_number == 7  # type: ignore[arg-type]
    finally:
        sync.committed = orig  # type: ignore[assignment]
    assert gone.calls == 2


def test_an_ordering_service_without_a_leader_is_waited_out_for_the_orderer_patience() -> None:
    """After a host was cut off, Raft on the others had no leader for ~20 s at a time, again
    and again: a transaction no orderer takes is sent afresh for ``orderer_patience``
    seconds (pauses growing to 5 s), however many times that is; then the error stands.
    Other transient failures still count against ``retries``."""
    from synthreg.ledger import SubmitError
    from synthreg.ledger.sync import submit_synced

    clock = _Clock()
    dark = _FlakyContract([SubmitError("UNAVAILABLE: no orderers could successfully process transaction")] * 20)
    res = submit_synced(dark, "Reveal", orgs=(), sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert (res.block_number, dark.calls) == (7, 21) and 70 < clock.t < 120  # 0.5 + 1 + ... + 5, then 5 s each
    clock = _Clock()
    gone = _FlakyContract([SubmitError("UNAVAILABLE: no orderers could successfully process transaction")] * 100)
    with pytest.raises(SubmitError):
        submit_synced(gone, "Reveal", orgs=(), sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert 120 <= clock.t < 130 and gone.calls < 40
    refused = _FlakyContract([SubmitError("received unsuccessful response from orderer: status=FORBIDDEN",
                                          code=grpc.StatusCode.ABORTED)] * 100)
    with pytest.raises(SubmitError, match="FORBIDDEN"):  # a verdict, not an outage: `retries` more tries only
        submit_synced(refused, "Reveal", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    assert refused.calls == 9


def _late_landing(lands: bool) -> None:
    """A lost transaction ("late"), a fresh one refused ALREADY_EXISTS; by the second
    lookup the own peer has the lost one's block if ``lands``."""
    from synthreg.ledger import ChaincodeError, CommitStatusError, EndorseError, sync
    from synthreg.ledger.sync import submit_synced

    duplicate = EndorseError.build('chaincode response 500, ALREADY_EXISTS: local update "r/M/1" already exists',
                                   tx_id="second")
    assert isinstance(duplicate, ChaincodeError)
    c = _FlakyContract([CommitStatusError("DEADLINE_EXCEEDED", tx_id="late"), duplicate])
    ledger = _Ledger({})
    c.network = ledger  # type: ignore[assignment]
    clock = iter(range(0, 10000, 5))
    looked: list[str] = []
    orig = sync.committed

    def lookup(contract: object, tx: str, **kw: object) -> object:
        looked.append(tx)
        if len(looked) == 2 and lands:
            ledger.txs["late"] = (0, 42)
        kw.pop("clock", None)
        return orig(contract, tx, clock=lambda: float(next(clock)), **kw)  # type: ignore[arg-type]

    try:
        sync.committed = lookup  # type: ignore[assignment]
        if lands:
            res = submit_synced(c, "Step", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
            assert (res.tx_id, res.block_number) == ("late", 42)
        else:
            with pytest.raises(ChaincodeError, match="ALREADY_EXISTS"):
                submit_synced(c, "Step", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    finally:
        sync.committed = orig  # type: ignore[assignment]
    assert c.calls == 2 and looked == ["late", "late"]


def test_a_lost_transaction_that_lands_late_is_the_success_of_its_duplicate() -> None:
    """Its commit status was lost and its own peer (catching up after a restart) did not
    show it by the lookup's timeout; the fresh submission is then refused ALREADY_EXISTS.
    If the ledger now holds the lost one, that is the result; otherwise the refusal stands."""
    _late_landing(True)
    _late_landing(False)


def test_a_transaction_no_orderer_confirmed_that_was_ordered_is_the_success_of_its_duplicate() -> None:
    """The Raft leader was killed after taking the transaction into its log but before
    answering: a SubmitError, yet the transaction commits. The fresh submission is then
    refused ALREADY_EXISTS, which is the first attempt's success once the ledger holds it
    (a merger in the Raft-leader-kill test crashed on that refusal, CI at 8ef4187).
    A SubmitError followed by ALREADY_EXISTS with nothing in the ledger still raises."""
    from synthreg.ledger import ChaincodeError, EndorseError, SubmitError, sync
    from synthreg.ledger.sync import submit_synced

    def contract(held: dict[str, tuple[int, int]]) -> _FlakyContract:
        duplicate = EndorseError.build('chaincode response 500, ALREADY_EXISTS: submission "r/1/M" already exists',
                                       tx_id="second")
        c = _FlakyContract([SubmitError("UNAVAILABLE: broadcast stream closed", tx_id="dead"), duplicate])
        c.network = _Ledger(held)  # type: ignore[assignment]
        return c

    c = contract({"dead": (0, 41)})
    res = submit_synced(c, "Submit", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    assert (res.tx_id, res.block_number, c.calls) == ("dead", 41, 2)
    orig, clock = sync.committed, iter(range(0, 10000, 5))
    try:
        sync.committed = lambda c, tx, **kw: orig(  # type: ignore[assignment]
            c, tx, **{**kw, "clock": lambda: float(next(clock))})
        with pytest.raises(ChaincodeError, match="ALREADY_EXISTS"):
            submit_synced(contract({}), "Submit", orgs=(), sleep=lambda s: None)  # type: ignore[arg-type]
    finally:
        sync.committed = orig  # type: ignore[assignment]


def test_mismatched_endorsements_are_sent_again_once_the_peers_share_a_height() -> None:
    """Endorsements that "do not match" (peer B simulated a block behind the caller's A,
    or A behind B): the next endorsement waits until the peers named and the own peer
    report one height, not a fixed 50 ms (a merger gave up a run on a mismatch that
    outlasted eight quick retries while Raft re-elected)."""
    from types import SimpleNamespace

    from synthreg.ledger import GatewayError
    from synthreg.ledger.errors import ErrorDetail
    from synthreg.ledger.sync import submit_synced

    mismatch = GatewayError("ABORTED: failed to collect enough transaction endorsements", details=(
        ErrorDetail("B:7051", "B", "ProposalResponsePayloads do not match"),))
    for heights, waited in (({"A": [8], "B": [6, 7, 8]}, ["A", "B", "B", "B"]),  # B behind: asked until height 8
                            ({"A": [7, 7, 8], "B": [8]}, ["A", "B", "A", "A"])):  # the own peer behind
        c = _FlakyContract([mismatch])
        c.network = _Network(_Qscc(heights))
        c.network.gateway = SimpleNamespace(identity=SimpleNamespace(msp_id="A"))  # type: ignore[attr-defined]
        clock = _Clock()
        assert submit_synced(c, "Submit", orgs=(), sleep=clock.sleep).block_number == 7  # type: ignore[arg-type]
        assert (c.network.qscc.calls, c.calls) == (waited, 2)

"""Wait until other organisations' peers have caught up with a committed block.

Who calls: multi-party protocols (secure aggregation rounds, G/D step records)
after a write that the next step of *another* party depends on, usually through
:func:`submit_synced`. The Gateway reports a commit as
soon as its own peer has committed; the endorsing peers of the next
transaction may still be a block behind and would endorse against stale state
(a spurious PRECONDITION_FAILED, or endorsements that "do not match").

How: ``qscc GetChainInfo`` evaluated on each organisation's peer (the Gateway's
``target_organizations``) until its height exceeds the block number.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence

import grpc
from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.peer import transaction_pb2

from synthreg.ledger.contract import Contract, SubmitResult
from synthreg.ledger.errors import (
    ChaincodeError,
    CommitError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    LedgerError,
    SubmitError,
)
from synthreg.ledger.gateway import Network

__all__ = ["PeerLagError", "chain_height", "committed", "submit_synced", "wait_for_block", "wrote_nothing"]


class PeerLagError(LedgerError):
    """An organisation's peer did not reach the block within the timeout."""

    def __init__(self, org: str, channel: str, block: int, height: int, timeout: float) -> None:
        super().__init__(f"peer of {org} on channel {channel!r} is at height {height}, "
                         f"still without block {block} after {timeout:.0f}s")
        self.org, self.channel, self.block, self.height = org, channel, block, height


def chain_height(network: Network, org: str) -> int:
    """Block height of ``network``'s channel on ``org``'s peer."""
    raw = network.contract("qscc").evaluate("GetChainInfo", network.name, endorsing_orgs=[org])
    return int(ledger_pb2.BlockchainInfo.FromString(raw).height)


def wait_for_block(network: Network, orgs: Sequence[str], block: int, timeout: float = 30.0,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once every peer of ``orgs`` has committed block ``block``
    (height > block); raises :class:`PeerLagError` after ``timeout`` seconds."""
    deadline = clock() + timeout
    for org in orgs:
        while (height := chain_height(network, org)) <= block:
            if clock() > deadline:
                raise PeerLagError(org, network.name, block, height, timeout)
            sleep(0.01)


RETRYABLE_VALIDATION = frozenset({"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"})
"""Validation codes of a transaction that lost a read race: it wrote nothing."""

ORDERER_PATIENCE_S = 120.0
"""How long :func:`submit_synced` keeps sending afresh a transaction no orderer took. After
a host was cut off, each Raft leader of the others stalled ~20 s on its sends to the lost
orderer and lost its followers, again and again (orderer logs of the host-cut test, stop
23): with 4 consenters and 1 cut off, quorum needs every one left."""

ENDORSEMENT_MISMATCH = "ProposalResponsePayloads do not match"
"""The Gateway's text when endorsing peers simulated at different block heights."""

ENDORSEMENTS_SHORT = "failed to collect enough transaction endorsements"
"""The Gateway's text when other organisations' peers refused what the caller's own
peer endorsed: they are still a block behind the state the caller acted on."""


def _peers_behind(exc: GatewayError, contract: Contract) -> bool:
    """Only other organisations' peers refused (the own peer, which the Gateway asks
    first, endorsed): a transient lag of theirs, worth endorsing again."""
    if ENDORSEMENTS_SHORT not in str(exc) or not exc.details:
        return False
    own = contract.network.gateway.identity.msp_id
    return all(d.msp_id != own for d in exc.details)


def _let_lagging_peers_catch_up(contract: Contract, exc: GatewayError, sleep: Callable[[float], None],
                                timeout: float) -> None:
    """Wait until the peers that refused (by a chaincode verdict: they are reachable)
    have the own peer's height, at most ``timeout`` seconds each: under load a peer can
    lag by seconds, longer than a few quick retries ride out. The wait is short and
    grows with the attempts (the caller's): a peer that stays behind (its orderer died,
    say) must not hold the caller up, since the next endorsement may go to another
    org's peer. A peer that cannot be asked leaves the decision to the retry."""
    network = contract.network
    own = network.gateway.identity.msp_id
    lagging = sorted({d.msp_id for d in exc.details if d.msp_id != own and "chaincode response" in d.message})
    try:
        height = chain_height(network, own)
        for org in lagging:
            with contextlib.suppress(PeerLagError):
                wait_for_block(network, [org], height - 1, timeout=timeout, sleep=sleep)
    except GatewayError:
        sleep(0.5)


def _let_endorsers_converge(contract: Contract, exc: GatewayError, sleep: Callable[[float], None],
                            timeout: float) -> None:
    """Endorsements that "do not match": the endorsing peers simulated at different
    heights. Wait until the own peer and every peer the error names as having answered
    report the same height (the highest among them), at most ``timeout`` seconds each, before endorsing
    again. While ordering is slow (Raft re-electing after an orderer's host went dark)
    peers stay a block apart for seconds, longer than a few quick retries ride out: a
    merger gave up a run on it (the host-cut test, stop 22). Without details, or when a
    peer cannot be asked, the retry's own pause decides."""
    answered = {d.msp_id for d in exc.details if ENDORSEMENT_MISMATCH in d.message or "chaincode response" in d.message}
    if not answered:
        return
    network = contract.network
    orgs = sorted(answered | {network.gateway.identity.msp_id})
    try:
        heights = {org: chain_height(network, org) for org in orgs}
        top = max(heights.values())
        for org in orgs:
            if heights[org] < top:
                with contextlib.suppress(PeerLagError):
                    wait_for_block(network, [org], top - 1, timeout=timeout, sleep=sleep)
    except GatewayError:
        sleep(0.5)


def wrote_nothing(exc: BaseException | None) -> bool:
    """Whether a failed write (what :func:`submit_synced` raised, e.g. the ``__cause__`` of
    a caller's own error) most likely left nothing on the ledger: no endorsement was
    collected (peers unreachable, or their answers did not match; not a chaincode verdict,
    which says something about the request), or no orderer confirmed it. The same judgement
    :func:`submit_synced` makes when it sends such a transaction afresh; an orderer that
    died with it may still have ordered it, so a caller checks the ledger before it acts
    on "nothing" (``MergerApp._write``). A lost commit status, or a commit that validation
    refused, is not such a failure."""
    return isinstance(exc, SubmitError) or (isinstance(exc, EndorseError) and not isinstance(exc, ChaincodeError))


def committed(contract: Contract, tx_id: str, timeout: float = 20.0, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> SubmitResult | None:
    """Whether ``tx_id``, whose commit status was lost, committed after all: looked up
    on the own peer (qscc ``GetTransactionByID``) until ``timeout``. Returns a
    :class:`SubmitResult` (without the chaincode's return value, which only the lost
    status carried) if it committed valid, raises :class:`CommitError` if it committed
    invalid, returns None if no block holds it by then (lost with an orderer)."""
    qscc = contract.network.contract("qscc")
    deadline = clock() + timeout
    while True:
        try:
            raw = qscc.evaluate("GetTransactionByID", contract.network.name, tx_id)
        except GatewayError:
            raw = None  # not (yet) in a block of this peer
        if raw is not None:
            code = int(transaction_pb2.ProcessedTransaction.FromString(raw).validationCode)
            block = common_pb2.Block.FromString(qscc.evaluate("GetBlockByTxID", contract.network.name, tx_id))
            if code != transaction_pb2.TxValidationCode.VALID:
                raise CommitError(tx_id, code, int(block.header.number))
            return SubmitResult(tx_id=tx_id, result=b"", block_number=int(block.header.number), status=code)
        if clock() > deadline:
            return None
        sleep(0.5)


def _no_orderer_available(exc: SubmitError) -> bool:
    """Whether no orderer could be reached or had a Raft leader (gRPC UNAVAILABLE or a
    deadline), rather than one that answered with a verdict on the transaction."""
    return exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or "UNAVAILABLE" in exc.message


def submit_synced(contract: Contract, fn: str, *args: str, orgs: Sequence[str], retries: int = 8,
                  sleep: Callable[[float], None] = time.sleep,
                  transient: Mapping[str, bytes] | None = None, orderer_patience: float | None = None,
                  clock: Callable[[], float] = time.monotonic) -> SubmitResult:
    """Submit ``fn(*args)`` (with ``transient``, if given) and return once every peer of ``orgs`` has its block.

    For multi-party protocols whose next step, by another party, is endorsed
    by every organisation's peer (``orgs=()`` returns at the own peer's commit:
    for parties that wait on events and retry instead). Three transient
    outcomes are endorsed afresh, up to ``retries`` times (none wrote
    anything): a read conflict at validation (:data:`RETRYABLE_VALIDATION`),
    endorsements that "do not match" because peers were a block apart while the
    state was changing (endorsed again once those peers report one height), and
    refusals by other organisations' peers only, which have not yet committed the
    block the caller's own peer had (:data:`ENDORSEMENTS_SHORT`). Orderer failures are ridden out too (Raft
    electing a new leader after one orderer died): a transaction no orderer
    accepted (:class:`~synthreg.ledger.SubmitError`) is submitted afresh after a
    longer pause (up to 5 s), for ``orderer_patience`` seconds (default
    :data:`ORDERER_PATIENCE_S`), and one whose commit status was lost
    (:class:`~synthreg.ledger.CommitStatusError`) is looked up in the ledger
    (:func:`committed`) and submitted afresh if no block holds it, or if it committed
    invalid with a read conflict (as when the status arrives).
    Other failures, and the last transient one, raise as :meth:`Contract.submit`
    does (:class:`~synthreg.ledger.GatewayError`, :class:`~synthreg.ledger.CommitError`).
    A lost transaction that did commit after all, later than the lookup could see
    (its own peer was catching up), or one no orderer confirmed that an orderer
    dying at that moment had ordered all the same, makes the fresh one a duplicate:
    an ``ALREADY_EXISTS`` refusal after such a loss is the earlier attempt's success
    when the ledger now holds it.
    """
    patience = ORDERER_PATIENCE_S if orderer_patience is None else orderer_patience
    lost: list[str] = []  # tx ids whose commit status was lost and no block held yet
    attempt, unordered, unordered_since = 0, 0, clock()
    while True:
        try:
            res = contract.submit(fn, *args) if transient is None else contract.submit(fn, *args, transient=transient)
            break
        except SubmitError as exc:
            # No orderer confirmed it. Usually nothing was written, but an orderer that died
            # (the Raft leader killed) may have taken it into its log before its answer was
            # lost: remember it like a lost commit status. Sent afresh for orderer_patience
            # seconds, not a number of times: Raft without a leader for a minute or more is
            # what a host cut off from the others costs (stop 23, the host-cut test).
            if exc.tx_id:
                lost.append(exc.tx_id)
            if _no_orderer_available(exc):
                unordered_since = unordered_since if unordered else clock()
                unordered += 1
                if clock() - unordered_since >= patience:
                    raise
                sleep(min(0.5 * unordered, 5.0))
                continue
            if attempt == retries:  # an orderer's verdict on the transaction: a few more tries only
                raise
            sleep(0.5 * (attempt + 1))
            attempt += 1
            continue
        except CommitStatusError as exc:
            try:
                found = committed(contract, exc.tx_id, sleep=sleep)
            except CommitError as invalid:  # it committed, and lost a read race: as below
                if invalid.name not in RETRYABLE_VALIDATION or attempt == retries:
                    raise
                sleep(0.05 * (attempt + 1))
                attempt += 1
                continue
            if found is not None:
                res = found
                break
            lost.append(exc.tx_id)
            if attempt == retries:
                raise
            attempt += 1
            continue
        except CommitError as exc:
            if exc.name not in RETRYABLE_VALIDATION or attempt == retries:
                raise
        except GatewayError as exc:
            if lost and isinstance(exc, ChaincodeError) and exc.chaincode.code == "ALREADY_EXISTS":
                earlier = next((r for r in (committed(contract, tx, timeout=5.0, sleep=sleep) for tx in lost)
                                if r is not None), None)
                if earlier is not None:
                    res = earlier
                    break
                raise
            behind = _peers_behind(exc, contract)
            if (ENDORSEMENT_MISMATCH not in str(exc) and not behind) or attempt == retries:
                raise
            if ENDORSEMENT_MISMATCH in str(exc):
                _let_endorsers_converge(contract, exc, sleep, timeout=min(0.5 * (attempt + 1), 2.0))
            elif behind:
                _let_lagging_peers_catch_up(contract, exc, sleep, timeout=min(0.5 * (attempt + 1), 2.0))
        sleep(0.05 * (attempt + 1))
        attempt += 1
    wait_for_block(contract.network, orgs, res.block_number)
    return res

"""Secure-aggregation rounds over the ledger (DESIGN.md §4): the merger side.

Who calls: each registry's merger app (:mod:`synthreg.apps.merger`, its own
process), which runs the phases of one :class:`LedgerMerger` and waits between
them on the ``Agg*`` chaincode events; the single-process reference path
(:func:`secure_average` / :class:`LedgerAggregator` through
``train_federated``'s ``aggregate`` hook, used by tests and
``bench/services_overhead.py``); tests drive the phases one by one to make
registries drop out.

What happens, per round, in ledger order (chaincode ``ganledger`` on ``gan``):

1. ``Advertise``: each merger posts a fresh X25519 round key and a commitment
   to its self-mask seed;
2. ``PostShares``: each deals its seed and round key by Feldman VSS
   (:mod:`synthreg.secagg.vss`): every other advertised merger gets its shares
   encrypted to its round key, and the public commitments go on the ledger;
3. ``PutBlob`` (ledger blobs only) + ``Submit``: each checks the shares dealt to it against their
   dealers' commitments, posts its masked, fixed-point weight vector (and
   optionally a CKKS audit ciphertext) as content-addressed blobs (their bytes
   in the transient map, so each block holds them once) and submits
   their hashes plus the dealers it *rejected* (bad share or unopenable
   envelope; :class:`~synthreg.secagg.BadDealingError` names the dealer); the
   masked vector alone is uniformly random;
4. the freeze: once everyone who shared has submitted the round is frozen
   (the chaincode derives it; ``Freeze`` after t votes otherwise), fixing
   the survivors U (late submissions are refused from then on), leaving out
   both sides of every rejection (the dealer, and the rejecter, whose word the
   chaincode cannot check: a false accusation costs the accuser its place
   too) — or voids the round if fewer than ``t`` remain;
5. ``Reveal``: each survivor reveals the seed shares of survivors and the
   round-key shares of dropped mergers, never both for one merger;
6. ``PostResult``: each survivor unmasks the sum on its own from any ``t``
   reveals whose shares verify against their owners' commitments (a bad
   revealed share is ignored and its revealer reported), divides by the
   survivors' total weight and posts the hash of the average. ``t`` equal
   hashes are the agreement; a differing hash names the merger.

t of n (``VoteClose``): the advertise, share and submit phases each wait for
everyone they expect; a merger whose own wait (``round_timeout_s``, its own
clock) runs out votes to close the phase without the missing ones, and the
chaincode closes it once ``t`` parties that are in voted. No transaction
timestamp decides, and a survivor that never reveals does not hold the round
up (any ``t`` reveals unmask it). A merger that is left out of a round
(:meth:`LedgerMerger.observe`) computes the agreed average from the ledger
alone, like the survivors did.

Where data lives: every message of the protocol is on the ledger (shares as
ciphertexts to their recipients; masked vectors as blobs when the run's
``blobs`` is ``ledger``, or only their hashes when it is ``served``: then each
merger keeps its own and the others fetch it over mutual TLS,
:mod:`synthreg.chain.blobs`, checking it against the hash); each merger's
round secrets live only in its :class:`~synthreg.secagg.party.Party` object in
memory and are erased after the round. Only the average is ever revealed.

Errors: :class:`AggregationLedgerError` subclasses, one per chaincode error
code (e.g. :class:`RoundClosedError` for a late transaction), raised ``from``
the Gateway error; :class:`RoundVoidError`, :class:`DisagreementError`;
crypto failures raise :mod:`synthreg.secagg` errors naming the party.

Two drivers of the same phases: the merger app (one merger per process,
woken by events) and :func:`secure_average` (every registry's merger in lock
step from one process, each with its own identity, Gateway and secrets; the
reference the apps are compared with bit for bit).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from synthreg.chain.blobs import BLOB_MODES, BlobFetcher
from synthreg.ledger import ChaincodeError, Contract, GatewayError
from synthreg.ledger.errors import CommitError
from synthreg.ledger.sync import submit_synced
from synthreg.secagg import (
    Advertisement,
    BadDealingError,
    BadRevealError,
    Dealing,
    Params,
    Party,
    Reveal,
    ShareEnvelopeError,
    average,
    average_sha256,
    decode_u64,
    encode_u64,
)

__all__ = [
    "PEER_CATCH_UP_S",
    "AggregationConfig",
    "AggregationLedgerError",
    "DisagreementError",
    "LedgerAggregator",
    "LedgerMerger",
    "RoundClosedError",
    "RoundOutcome",
    "RoundVoidError",
    "left_out_of",
    "open_aggregation",
    "phase_closed",
    "phase_standing",
    "secure_average",
    "secure_sum",
]

T = TypeVar("T")
TRANSIENT_BLOB = "blob"
"""PutBlob's transient entry (chaincode ``TransientBlob``): the blob's bytes travel there,
which the peer strips from the transaction, so a block holds them once (the write set)."""
PEER_CATCH_UP_S = 120.0
"""How long a merger whose vote was refused as too late waits for its own peer to show
the round closed (a peer back from a network cut catches up in seconds to a minute)."""
PUSH_TIMEOUT_S = 5.0
"""Served runs: how long a merger's push of its masked vector to one peer's blob server
may stall on a socket before that peer is left to fetch it later."""
log = logging.getLogger("synthreg.chain")

AuditEncryptor = Callable[[np.ndarray], bytes]
"""weights vector -> serialized CKKS audit ciphertext (under the consortium's audit public key)"""


# --------------------------------------------------------------------- errors


class AggregationLedgerError(Exception):
    """A ganledger aggregation call failed. ``code`` is the chaincode's error
    code ("" when the failure was outside the chaincode: connection, ordering,
    an MVCC/phantom conflict at validation), ``fn`` the function, ``msp`` the
    caller."""

    def __init__(self, fn: str, msp: str, code: str, detail: str) -> None:
        super().__init__(f"{fn} by {msp} failed: {detail}")
        self.fn, self.msp, self.code, self.detail = fn, msp, code, detail


class RoundClosedError(AggregationLedgerError):
    """The phase this call belongs to is closed (``PRECONDITION_FAILED``): e.g. a
    submission after the round was frozen, or a Freeze before its time."""


class AlreadyDoneError(AggregationLedgerError):
    """This merger already did this step for this round (``ALREADY_EXISTS``)."""


class RoundVoidError(Exception):
    """Fewer than ``t`` mergers submitted before the round was frozen."""

    def __init__(self, run: str, rnd: int, survivors: Sequence[str], threshold: int) -> None:
        super().__init__(f"run {run} round {rnd} is void: {len(survivors)} survivor(s) "
                         f"{list(survivors)} < threshold {threshold}")
        self.run, self.round, self.survivors, self.threshold = run, rnd, list(survivors), threshold


class DisagreementError(Exception):
    """The survivors posted different hashes of the average; ``mismatched`` names them."""

    def __init__(self, run: str, rnd: int, mismatched: Sequence[str]) -> None:
        super().__init__(f"run {run} round {rnd}: mergers {list(mismatched)} posted an average "
                         "that differs from the majority's")
        self.run, self.round, self.mismatched = run, rnd, list(mismatched)


def _ledger_error(fn: str, msp: str, exc: GatewayError | CommitError) -> AggregationLedgerError:
    """The typed error for a failed call, from the code the ledger client parsed."""
    if not isinstance(exc, ChaincodeError):
        return AggregationLedgerError(fn, msp, "", str(exc))
    code = exc.chaincode.code
    cls = {"PRECONDITION_FAILED": RoundClosedError, "ALREADY_EXISTS": AlreadyDoneError}.get(
        code, AggregationLedgerError)
    return cls(fn, msp, code, exc.chaincode.detail)


PHASE_ENTRIES = {"advertise": "advertised", "shares": "shares", "submit": "submissions"}
"""the ``GetRound`` field that lists who is in each phase"""


def phase_closed(state: Mapping[str, Any], phase: str, t: int) -> bool:
    """Whether ``phase`` of a round (``GetRound``) admits no one else, as the chaincode
    decides: the round is no longer open, t voted to close the phase, or the next phase
    has begun (shares posted close the advertise phase, a submission the share phase)."""
    if phase not in PHASE_ENTRIES:
        raise ValueError(f"unknown secure-aggregation phase {phase!r}")
    following = {"advertise": "shares", "shares": "submissions"}.get(phase)
    return (state["status"] != "open" or len(state.get("votes", {}).get(phase, ())) >= t
            or (following is not None and bool(state.get(following))))


def phase_standing(state: Mapping[str, Any], msp: str, phase: str, t: int) -> str:
    """Where ``msp`` stands in ``phase`` of a round (``GetRound``): "in" (its entry is
    there), "closed" (:func:`phase_closed`: it can no longer get in) or "open"."""
    if msp in state.get(PHASE_ENTRIES.get(phase, ""), ()):
        return "in"
    return "closed" if phase_closed(state, phase, t) else "open"


# --------------------------------------------------------------------- config


@dataclass(frozen=True)
class AggregationConfig:
    """The run-level agreement every merger signs up to (``OpenAggregation``)."""

    participants: tuple[str, ...]
    threshold: int
    vector_len: int
    scale_bits: int = 32
    round_timeout_s: int = 30
    blobs: str = "ledger"
    """where masked vectors and audit copies live: ``ledger`` (PutBlob) or ``served``
    (each merger's registry serves its own; :mod:`synthreg.chain.blobs`)"""

    def __post_init__(self) -> None:
        if self.blobs not in BLOB_MODES:
            raise ValueError(f"blobs must be one of {list(BLOB_MODES)}, got {self.blobs!r}")

    @classmethod
    def default(cls, participants: Sequence[str], vector_len: int, round_timeout_s: int = 30,
                blobs: str = "ledger") -> AggregationConfig:
        """t = ⌊N/2⌋ + 1 (DESIGN.md §4)."""
        parts = tuple(sorted(participants))
        return cls(parts, len(parts) // 2 + 1, vector_len, 32, round_timeout_s, blobs)

    def to_json(self) -> str:
        return json.dumps({"participants": list(self.participants), "threshold": self.threshold,
                           "vector_len": self.vector_len, "scale_bits": self.scale_bits,
                           "round_timeout_s": self.round_timeout_s,
                           **({"blobs": self.blobs} if self.blobs != "ledger" else {})}, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AggregationConfig:
        return cls(tuple(d["participants"]), int(d["threshold"]), int(d["vector_len"]),
                   int(d["scale_bits"]), int(d["round_timeout_s"]), str(d.get("blobs") or "ledger"))

    def params(self, run: str, rnd: int) -> Params:
        return Params(run=run, round=rnd, participants=self.participants, threshold=self.threshold,
                      vector_len=self.vector_len, scale_bits=self.scale_bits)


def open_aggregation(contract: Contract, msp: str, run: str, config: AggregationConfig) -> str:
    """Record the run's aggregation config (once per run); returns the tx id once every
    participant's peer has it (their mergers' first Advertise is endorsed there)."""
    try:
        return submit_synced(contract, "OpenAggregation", run, config.to_json(), orgs=config.participants).tx_id
    except (GatewayError, CommitError) as exc:
        raise _ledger_error("OpenAggregation", msp, exc) from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def left_out_of(state: Mapping[str, Any], msp: str, threshold: int) -> bool:
    """Whether ``msp``'s merger is out of the round ``state`` (a ``GetRound``): a
    phase it had not joined closed without it (by everyone else being in, by
    ``t`` votes, or by the next phase starting), or the round froze without it.
    Monotone: once out, always out."""
    votes = state.get("votes", {})
    closed_adv = bool(state["shares"]) or len(votes.get("advertise", [])) >= threshold
    closed_shares = bool(state["submissions"]) or len(votes.get("shares", [])) >= threshold
    frozen = state["status"] != "open"
    if msp not in state["advertised"]:
        return closed_adv or frozen
    if msp not in state["shares"]:
        return closed_shares or frozen
    return frozen and msp not in state["survivors"]


# --------------------------------------------------------------------- merger


@dataclass
class RoundOutcome:
    """What a survivor computed and the ledger agreed on for one round."""

    round: int
    average: np.ndarray
    average_sha256: str
    survivors: list[str]
    dropped: list[str]


class LedgerMerger:
    """One registry's merger in one run: its own Contract (signing as that
    registry's merger identity) and its own per-round secrets."""

    def __init__(self, contract: Contract, msp: str, run: str, config: AggregationConfig,
                 sync: bool = True, blobs: BlobFetcher | None = None) -> None:
        if msp not in config.participants:
            raise ValueError(f"{msp} is not a participant of run {run} ({list(config.participants)})")
        if config.blobs == "served" and blobs is None:
            raise ValueError(f"run {run} serves its blobs off the ledger: {msp}'s merger needs a blob fetcher")
        self.blobs = blobs if config.blobs == "served" else None
        """served runs: the own blob store and the fetcher of the others' blobs"""
        self.contract, self.msp, self.run, self.config = contract, msp, run, config
        self.sync = sync
        """wait after each write until every participant's peer has its block (the
        lock-step driver needs it; an event-driven merger app re-endorses instead)"""
        self._parties: dict[int, Party] = {}
        self._advertised_with_result: set[int] = set()  # rounds advertised by the previous round's PostResult
        self._masked: dict[int, bytes] = {}
        self._prepared: dict[int, tuple[str, dict[str, Any]]] = {}  # round -> (inputs' hash, submission)
        self.tx_ids: list[str] = []
        self.bad_dealings: dict[int, list[BadDealingError | ShareEnvelopeError]] = {}
        """per round, the dealings this merger rejected on receipt (each names the dealer)"""
        self.bad_reveals: dict[int, list[BadRevealError]] = {}
        """per round, revealed shares that failed their owner's commitments (each names the revealer)"""

    # -- plumbing
    def _submit(self, fn: str, *args: str, transient: Mapping[str, bytes] | None = None) -> str:
        """Submit; with :attr:`sync`, wait until every participant's peer has the
        block (the next step, another merger's, is endorsed by them); transient
        races are retried (:func:`synthreg.ledger.sync.submit_synced`)."""
        try:
            res = submit_synced(self.contract, fn, *args, orgs=self.config.participants if self.sync else (),
                                transient=transient)
        except (GatewayError, CommitError) as exc:
            raise _ledger_error(fn, self.msp, exc) from exc
        self.tx_ids.append(res.tx_id)
        return res.tx_id

    def _evaluate(self, fn: str, *args: str) -> bytes:
        try:
            return self.contract.evaluate(fn, *args)
        except GatewayError as exc:
            raise _ledger_error(fn, self.msp, exc) from exc

    def state(self, rnd: int) -> dict[str, Any]:
        """``GetRound`` as a dict (see /chaincode/README.md)."""
        state: dict[str, Any] = json.loads(self._evaluate("GetRound", self.run, str(rnd)))
        return state

    def wait_for(self, rnd: int, ready: Callable[[dict[str, Any]], bool], what: str,
                 timeout: float = 30.0) -> dict[str, Any]:
        """``GetRound`` from this merger's own peer once ``ready(state)`` holds.

        Each merger reads through its own organisation's peer, which may be a
        block behind the peer that committed another merger's transaction; a
        phase must not start on a stale view (e.g. masking against too few peers).
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(rnd)
            if ready(state):
                return state
            if time.monotonic() > deadline:
                raise AggregationLedgerError("GetRound", self.msp, "",
                                             f"round {rnd}: still waiting for {what} after {timeout:.0f}s")
            time.sleep(0.02)

    def _party(self, rnd: int) -> Party:
        try:
            return self._parties[rnd]
        except KeyError:
            raise ValueError(f"{self.msp} has not advertised in round {rnd}") from None

    @staticmethod
    def _adverts(state: Mapping[str, Any]) -> dict[str, Advertisement]:
        return {m: Advertisement.from_json(m, a) for m, a in state["advertised"].items()}

    @staticmethod
    def _dealings(state: Mapping[str, Any]) -> dict[str, Dealing]:
        return {m: Dealing.from_json(m, d) for m, d in state["dealings"].items()}

    def blob(self, sha: str, rnd: int, owner: str) -> bytes:
        """The blob ``sha`` that ``owner`` submitted in round ``rnd``: from the ledger, or
        in a served run from the own store or a holder's blob server (hash-checked)."""
        if self.blobs is not None:
            return self.blobs.fetch(self.run, rnd, sha, owner,  # its own stores were looked in first
                                    [m for m in self.config.participants if m != self.msp])
        data = _unb64(self._evaluate("GetBlob", self.run, sha).decode("ascii"))
        if hashlib.sha256(data).hexdigest() != sha:  # the ledger is the source of truth; check anyway
            raise AggregationLedgerError("GetBlob", self.msp, "", f"blob {sha} does not match its hash")
        return data

    # -- phases
    def advertise(self, rnd: int) -> str:
        """Advertise this merger's key and seed commitment of round ``rnd``; nothing (and
        "") if the previous round's :meth:`result` advertised them already."""
        if rnd in self._advertised_with_result:
            return ""
        adv = self._next_party(rnd).advertisement()
        return self._submit("Advertise", self.run, str(rnd), _b64(adv.public_key), adv.seed_commit)

    def _next_party(self, rnd: int) -> Party:
        # Kept before the write, and sent again unchanged by a retry: a write that fails
        # yet lands (an orderer died with it) is this party's.
        party = self._parties.get(rnd) or Party.new(self.config.params(self.run, rnd), self.msp)
        self._parties[rnd] = party
        return party

    def post_shares(self, rnd: int, state: Mapping[str, Any] | None = None) -> str:
        """Deal this merger's shares to the advertised parties. ``state``: the round as
        read after the advertise phase closed (A is fixed then), else it is read."""
        party = self._party(rnd)
        envelopes = self._envelopes(party, self._adverts(state if state is not None else self.state(rnd)))
        return self._submit("PostShares", self.run, str(rnd),
                            json.dumps({m: _b64(e) for m, e in sorted(envelopes.items())}),
                            json.dumps(party.dealing.to_json(), sort_keys=True))

    def _envelopes(self, party: Party, advertised: Mapping[str, Advertisement]) -> dict[str, bytes]:
        """The share envelopes to post (a test's malicious dealer overrides this)."""
        return party.make_shares(advertised)

    def submit(self, rnd: int, vector: np.ndarray, weight: float = 1.0, audit_blob: bytes | None = None,
               state: Mapping[str, Any] | None = None, update: Mapping[str, str] | None = None) -> str:
        """Mask ``weight * vector`` against every other merger that shared, post it
        (and ``audit_blob``) as blobs and submit the hashes. Returns the masked hash.
        What :meth:`prepare` did for the same inputs is not done again. ``update``
        (``g_weights_sha256``, ``d_weights_sha256``): the registry's local update of
        the round, recorded by the same transaction (the chaincode checks it against
        the registry's step records as ``RecordLocalUpdate`` would).

        The shares addressed to this merger are opened and checked against their
        dealers' commitments first; a dealer whose envelope does not open or whose
        share is off its polynomial is *rejected* (listed in :attr:`bad_dealings`
        and in the submission's "rejected"): the chaincode's Freeze then leaves
        both out of the round, so that no honest merger ever depends on, or is
        blamed for, a bad share."""
        submission = self.prepare(rnd, vector, weight, audit_blob, state)
        if update is not None:
            submission["update"] = dict(update)
        self._submit("Submit", self.run, str(rnd), json.dumps(submission, sort_keys=True))
        return str(submission["masked_sha256"])

    def prepare(self, rnd: int, vector: np.ndarray, weight: float = 1.0,
                audit_blob: bytes | None = None, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything of :meth:`submit` but the transaction: open and check the shares,
        mask, keep the blobs (served: push the masked one to the peers). Returns the
        submission JSON object; done once per round and inputs (the mask is the same
        for the same inputs, and another vector raises ``AlreadyUsedError``). The
        merger app prepares while its generator's local update is being committed.
        ``state``: the round as read after the share phase closed (P and the dealings
        are fixed then), else it is read."""
        key = hashlib.sha256(np.ascontiguousarray(vector).tobytes() + repr(weight).encode()
                             + (hashlib.sha256(audit_blob).digest() if audit_blob is not None else b"")).hexdigest()
        done = self._prepared.get(rnd)
        if done is not None and done[0] == key:
            return dict(done[1])
        party = self._party(rnd)
        if state is None:
            state = self.state(rnd)
        peers = sorted(m for m in state["shares"] if m != self.msp)
        dealings = state.get("dealings", {})
        for sender in peers:  # open the shares addressed to me before masking against their senders
            if sender in party.rejected:
                continue
            try:
                if sender not in dealings:
                    raise BadDealingError(sender, self.msp, "commitments", "no dealing on the ledger")
                party.receive_shares(sender, _unb64(state["shares"][sender][self.msp]),
                                     Dealing.from_json(sender, dealings[sender]))
            except (BadDealingError, ShareEnvelopeError) as exc:
                party.reject(sender)
                self.bad_dealings.setdefault(rnd, []).append(exc)
                log.warning("%s merger: round %d: rejecting %s's dealing: %s", self.msp, rnd, sender, exc)
        masked = encode_u64(party.mask(vector, weight, peers))
        masked_sha = self._put_blob(rnd, masked)
        if self.blobs is not None:  # served: the peers hold it before the Submit names it
            took = self.blobs.push(self.run, rnd, masked, peers, timeout=PUSH_TIMEOUT_S)
            log.debug("%s merger: round %d: masked vector pushed to %s", self.msp, rnd, took)
        self._masked[rnd] = masked
        audit_sha = self._put_blob(rnd, audit_blob) if audit_blob is not None else ""
        submission = {"masked_sha256": masked_sha, "audit_sha256": audit_sha, "peers": peers,
                      "rejected": list(party.rejected)}
        self._prepared[rnd] = (key, submission)
        return dict(submission)

    def _put_blob(self, rnd: int, data: bytes) -> str:
        if self.blobs is not None:  # served: on the own disk before the Submit names it
            return self.blobs.own.put(self.run, rnd, data)
        sha = hashlib.sha256(data).hexdigest()
        with contextlib.suppress(AlreadyDoneError):  # content-addressed: the same bytes are already there
            self._submit("PutBlob", self.run, sha, transient={TRANSIENT_BLOB: data})  # in the block once
        return sha

    def vote(self, rnd: int, phase: str) -> bool:
        """Vote to close ``phase`` ("advertise", "shares", "submit") of round ``rnd``
        without the parties still missing; True if the vote is (or already was) on
        the ledger, or the phase closed without it (t votes, or the next phase began);
        False if the round is no longer open (nothing left to close).

        A refusal (``PRECONDITION_FAILED``) is judged by the round on the own peer, for up
        to :data:`PEER_CATCH_UP_S`: other registries' peers endorse too, and one may not
        have this merger's entry of the phase yet ("has not advertised": the host-cut test,
        where two mergers ended the run on it), or the own peer may not have the freeze yet
        (back from a network cut). While the phase is open on the own peer the vote is sent
        again; after that time the refusal stands."""
        deadline = time.monotonic() + PEER_CATCH_UP_S
        while True:
            try:
                self._submit("VoteClose", self.run, str(rnd), phase)
                return True
            except AlreadyDoneError:
                return True
            except RoundClosedError as exc:
                refusal = exc
            with contextlib.suppress(AggregationLedgerError):  # the round unreadable: as if open
                state = self.state(rnd)
                if state["status"] != "open":
                    return False
                if phase_closed(state, phase, self.config.threshold):
                    return True
            if time.monotonic() > deadline:
                raise refusal
            time.sleep(1.0)

    def freeze(self, rnd: int) -> bool:
        """Try to close the round; False while it may not be closed yet."""
        try:
            self._submit("Freeze", self.run, str(rnd))
        except RoundClosedError:
            status: str = self.state(rnd)["status"]
            return status != "open"
        except AlreadyDoneError:
            return True
        except AggregationLedgerError as exc:
            if exc.code:  # a chaincode verdict other than 'not yet'
                raise
            return False  # e.g. a phantom-read conflict with a racing Submit: try again
        return True

    def reveal(self, rnd: int, state: Mapping[str, Any] | None = None) -> str:
        """Reveal what unmasking needs: seed shares of survivors, key shares of the dropped.
        ``state``: the round as read once frozen (U and D are fixed then), else it is read."""
        party = self._party(rnd)
        if state is None or state.get("status") == "open":
            state = self.state(rnd)
        if state["status"] == "void":
            raise RoundVoidError(self.run, rnd, state["survivors"], self.config.threshold)
        rev = party.reveal(state["survivors"], state["dropped"])
        return self._submit("Reveal", self.run, str(rnd), json.dumps(rev.to_json(), sort_keys=True))

    def _unmask(self, rnd: int, state: Mapping[str, Any], weights: Mapping[str, float] | None,
                mine: bytes | None) -> tuple[np.ndarray, str]:
        """The round's average and its hash from the ledger alone (the survivors'
        masked blobs and at least t reveals); ``mine`` spares reading back my own blob."""
        survivors, dropped = list(state["survivors"]), list(state["dropped"])
        params = self.config.params(self.run, rnd)
        masked = {m: decode_u64(mine if m == self.msp and mine is not None
                                else self.blob(state["submissions"][m]["masked_sha256"], rnd, m), params.vector_len)
                  for m in survivors}
        if mine is not None and hashlib.sha256(mine).hexdigest() != state["submissions"][self.msp]["masked_sha256"]:
            raise AggregationLedgerError("GetRound", self.msp, "", "my submission on the ledger is not what I sent")
        reveals = {m: Reveal.from_json(m, r) for m, r in state["reveals"].items()}
        peers_of = {m: list(state["submissions"][m]["peers"]) for m in survivors}
        w = {m: float((weights or {}).get(m, 1.0)) for m in survivors}
        bad: list[BadRevealError] = []
        avg = average(params, self._adverts(state), masked, reveals, dropped, peers_of, self._dealings(state), w, bad)
        if bad:
            self.bad_reveals[rnd] = bad
            log.warning("%s merger: round %d: ignored revealed shares that fail their commitments: %s",
                        self.msp, rnd, "; ".join(str(e) for e in bad))
        return avg, average_sha256(avg)

    def observe(self, rnd: int, weights: Mapping[str, float] | None = None) -> RoundOutcome:
        """The agreed average of a round this merger was left out of (or cannot
        finish: its round secrets are gone), computed from the ledger alone and
        checked against the hash ``t`` survivors agreed on. Needs the agreement."""
        self.forget(rnd)
        state = self.state(rnd)
        if state.get("agreed") is not True:
            raise AggregationLedgerError("GetRound", self.msp, "", f"round {rnd} has no agreed average yet")
        avg, sha = self._unmask(rnd, state, weights, None)
        if sha != state["average_sha256"]:
            raise DisagreementError(self.run, rnd, [self.msp])
        return RoundOutcome(rnd, avg, sha, list(state["survivors"]), list(state["dropped"]))

    def result(self, rnd: int, weights: Mapping[str, float] | None = None,
               before_post: Callable[[np.ndarray, str], object] | None = None,
               state: Mapping[str, Any] | None = None,
               record: Callable[[np.ndarray, str], Mapping[str, Any]] | None = None,
               advertise_next: bool = False) -> RoundOutcome:
        """Unmask the sum from the ledger alone (any t reveals), post the hash of the
        average, erase secrets.

        ``before_post(average, sha256)`` runs before the hash is posted (a merger
        app puts the average into its registry's workspace there, so that G and D
        find it as soon as the ledger shows the agreement). ``state``: the round as read
        once t survivors revealed, else it is read. ``record(average, sha256)``: this
        registry's round record (the trail entry), stored by the same ``PostResult``
        transaction under ``run/<run>/round/<rnd>/<msp>`` (chaincode/spec/secagg.md).
        ``advertise_next``: the same transaction advertises this merger's key and seed
        commitment of round ``rnd + 1`` (issue 11: one transaction per merger and round
        fewer; :meth:`advertise` of that round then writes nothing). If the chaincode
        refuses that advert (the next round's advertise phase closed without this
        merger, say) the result is posted alone and the next round advertised as usual."""
        if state is None:
            state = self.state(rnd)
        survivors, dropped = list(state["survivors"]), list(state["dropped"])
        avg, sha = self._unmask(rnd, state, weights, self._masked.pop(rnd, None))
        if before_post is not None:
            before_post(avg, sha)
        posted: dict[str, Any] = {"average_sha256": sha}
        if record is not None:
            posted["record"] = dict(record(avg, sha))
        if advertise_next:
            adv = self._next_party(rnd + 1).advertisement()
            posted["next"] = {"public_key": _b64(adv.public_key), "seed_commit": adv.seed_commit}
            try:
                self._post_result(rnd, posted)
                self._advertised_with_result.add(rnd + 1)
            except (RoundClosedError, AlreadyDoneError) as exc:  # the advert refused: the result alone
                log.info("%s merger: round %d: result posted without the next round's advert (%s)",
                         self.msp, rnd, exc.detail)
                del posted["next"]
                self._post_result(rnd, posted)
        else:
            self._post_result(rnd, posted)
        party = self._parties.pop(rnd, None)
        if party is not None:
            party.erase()
        return RoundOutcome(rnd, avg, sha, survivors, dropped)

    def _post_result(self, rnd: int, posted: Mapping[str, Any]) -> None:
        try:
            self._submit("PostResult", self.run, str(rnd), json.dumps(posted, sort_keys=True))
        except AlreadyDoneError:
            # an earlier attempt landed although its answer was lost (a host cut off mid-
            # endorsement; seen in CI): fine if the ledger holds this very hash (and advert)
            if (self.state(rnd).get("results") or {}).get(self.msp) != posted["average_sha256"]:
                raise
            if "next" in posted and ((self.state(rnd + 1).get("advertised") or {}).get(self.msp) or {}).get(
                    "public_key") != posted["next"]["public_key"]:
                raise

    def forget(self, rnd: int) -> None:
        """Drop out of a round: erase its secrets without finishing."""
        party = self._parties.pop(rnd, None)
        if party is not None:
            party.erase()
        self._masked.pop(rnd, None)
        self._prepared.pop(rnd, None)


# --------------------------------------------------------------------- lock step


def _each(mergers: Sequence[LedgerMerger], fn: Callable[[LedgerMerger], T]) -> list[T]:
    """Run one phase for every merger concurrently (one Gateway each)."""
    if len(mergers) <= 1:
        return [fn(m) for m in mergers]
    with ThreadPoolExecutor(max_workers=len(mergers)) as pool:
        return list(pool.map(fn, mergers))


def secure_average(
    mergers: Sequence[LedgerMerger],
    rnd: int,
    vectors: Mapping[str, np.ndarray],
    weights: Mapping[str, float] | None = None,
    audit_blobs: Mapping[str, bytes] | None = None,
    drop_before_submit: Sequence[str] = (),
) -> RoundOutcome:
    """One full round for ``mergers`` (each registry's own), in lock step.

    ``drop_before_submit`` names mergers that share but never submit (a
    registry whose update could not be made): the others vote to close the
    submit phase without them (as do they, if the round needs their votes to
    be closed at all), and recover the dropped masks from shares. Returns the
    outcome agreed on the ledger; raises :class:`RoundVoidError` or
    :class:`DisagreementError` otherwise.
    """
    dropped = set(drop_before_submit)
    n = len(mergers)
    _each(mergers, lambda m: m.advertise(rnd))
    _each(mergers, lambda m: m.wait_for(rnd, lambda s: len(s["advertised"]) == n, "every advertisement"))
    _each(mergers, lambda m: m.post_shares(rnd))
    active = [m for m in mergers if m.msp not in dropped]
    for m in mergers:
        if m.msp in dropped:
            m.forget(rnd)
    _each(active, lambda m: m.wait_for(rnd, lambda s: len(s["shares"]) == n, "every merger's shares"))
    _each(active, lambda m: m.submit(rnd, vectors[m.msp], (weights or {}).get(m.msp, 1.0),
                                     (audit_blobs or {}).get(m.msp)))
    first = active[0] if active else mergers[0]
    if dropped:
        threshold = first.config.threshold
        voters = active + [m for m in mergers if m.msp in dropped][:max(0, threshold - len(active))]
        _each(voters, lambda m: m.vote(rnd, "submit"))
        first.wait_for(rnd, lambda s: len(s["votes"]["submit"]) >= min(threshold, len(voters)), "the votes")
    if not first.freeze(rnd):
        raise AggregationLedgerError("Freeze", first.msp, "", "round could not be frozen")
    state = first.state(rnd)
    if state["status"] == "void":
        raise RoundVoidError(first.run, rnd, state["survivors"], first.config.threshold)
    u = set(state["survivors"])
    survivors = [m for m in active if m.msp in u]
    _each(survivors, lambda m: m.wait_for(rnd, lambda s: s["status"] != "open", "the freeze"))
    _each(survivors, lambda m: m.reveal(rnd))
    _each(survivors, lambda m: m.wait_for(rnd, lambda s: set(s["reveals"]) == u, "every survivor's reveal"))
    outcomes = _each(survivors, lambda m: m.result(rnd, weights))
    final = survivors[0].wait_for(rnd, lambda s: set(s["results"]) == u, "every survivor's result")
    if final.get("agreed") is not True:
        raise DisagreementError(survivors[0].run, rnd, final.get("mismatched") or [])
    return outcomes[0]


class LedgerAggregator:
    """The :data:`synthreg.gan.federated.Aggregator` that averages by secure
    aggregation over the ledger: registry ``i``'s vector is masked and submitted
    by ``msps[i]``'s merger. The run's aggregation config is recorded on the
    first call (when the vector length is known). ``outcomes`` keeps every
    round's agreed result (survivors, hash)."""

    def __init__(self, contracts: Mapping[str, Contract], msps: Sequence[str], run: str,
                 round_timeout_s: int = 30, audit: AuditEncryptor | None = None,
                 audit_rounds: Collection[int] = ()) -> None:
        self.contracts, self.msps, self.run = contracts, list(msps), run
        self.round_timeout_s = round_timeout_s
        self.audit, self.audit_rounds = audit, set(audit_rounds)
        self.mergers: list[LedgerMerger] = []
        self.outcomes: list[RoundOutcome] = []
        self._audit_cts: dict[tuple[int, str], bytes] = {}

    def __call__(self, rnd: int, vectors: list[np.ndarray], weights: list[float] | None) -> np.ndarray:
        if len(vectors) != len(self.msps):
            raise ValueError(f"{len(vectors)} vectors for {len(self.msps)} registries")
        if not self.mergers:
            config = AggregationConfig.default(self.msps, int(vectors[0].size), self.round_timeout_s)
            first = self.msps[0]
            open_aggregation(self.contracts[first], first, self.run, config)
            self.mergers = [LedgerMerger(self.contracts[m], m, self.run, config) for m in self.msps]
        by_msp = dict(zip(self.msps, vectors, strict=True))
        w = None if weights is None else dict(zip(self.msps, weights, strict=True))
        audit_blobs = None
        if self.audit is not None and rnd in self.audit_rounds:
            # each registry's CKKS audit copy travels in its own submission (DESIGN.md §4 step 3)
            audit_blobs = {m: self.audit(v) for m, v in by_msp.items()}
            self._audit_cts.update({(rnd, m): ct for m, ct in audit_blobs.items()})
        outcome = secure_average(self.mergers, rnd, by_msp, w, audit_blobs)
        self.outcomes.append(outcome)
        return outcome.average

    def audit_ciphertext(self, rnd: int, msp: str) -> bytes | None:
        """The audit ciphertext ``msp`` submitted in round ``rnd`` (None if that
        round was not audited); the trail recorder stores the same bytes."""
        return self._audit_cts.pop((rnd, msp), None)

    @property
    def tx_ids(self) -> list[str]:
        return [tx for m in self.mergers for tx in m.tx_ids]


def secure_sum(contracts: Mapping[str, Contract], msps: Sequence[str], run: str,
               vectors: Sequence[np.ndarray], round_timeout_s: int = 30) -> np.ndarray:
    """Σ of registry ``i``'s ``vectors[i]`` over the survivors, by one secure-aggregation
    round (round 0 of aggregation run ``run``): e.g. the encoder's pooled
    histograms, so that no registry sees another's counts. float64."""
    agg = LedgerAggregator(contracts, msps, run, round_timeout_s)
    average = agg(0, [np.asarray(v, dtype=np.float64) for v in vectors], None)
    return average.astype(np.float64) * len(agg.outcomes[-1].survivors)

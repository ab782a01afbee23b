"""Training runs agreed on the ledger (DESIGN.md §8): the run spec and its client.

Who calls: ``synthreg run propose|approve|abort|status|watch`` (a registry's
admin), the registries' apps (which learn from ``GetRun`` what to train), the
auditor (which takes the expected registries and audited rounds from the run
every participant approved), the demo.

Where data lives: the whole spec is one ``ganledger`` document on channel
``gan`` (``ProposeRun``); the chaincode keeps the exact JSON text the proposer
sent (``spec_json``) and its sha256 (``run_sha256``), so every approver hashes
the very bytes it checked. The training config in it includes the update bound
``max_update_norm`` (:mod:`synthreg.gan.bound`), so every participant approves
the bound its peers' updates are held to. The run starts (``RunStarted`` event) when every
participant's admin has approved; any participant's admin can abort it.

What fails when: :class:`RunSpecError` for a spec that is inconsistent before
anything is sent (nothing reaches the ledger); :class:`RunLedgerError` (with the
chaincode's ``code``) when the chaincode refuses a call; the local checks of
:func:`check_local_facts` raise :class:`ApprovalRefusedError` naming what
differs (e.g. both schema hashes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthreg.chain.blobs import BLOB_MODES
from synthreg.data.schema import Schema
from synthreg.gan.config import TrainConfig, TrainConfigError
from synthreg.gan.stoprule import StopRule, StopRuleError
from synthreg.ledger import ChaincodeError, Contract, LedgerError
from synthreg.ledger.sync import submit_synced

__all__ = [
    "ApprovalRefusedError",
    "LedgerRuns",
    "RunLedgerError",
    "RunRecord",
    "RunSpec",
    "RunSpecError",
    "canonical_json",
    "default_audit_rounds",
]


class RunSpecError(ValueError):
    """The run spec is inconsistent (checked before anything is sent)."""


class ApprovalRefusedError(Exception):
    """A registry's client refuses to approve: the run does not fit its local facts."""


class RunLedgerError(Exception):
    """A runs call failed; ``code`` is the chaincode's error code ("" outside the chaincode)."""

    def __init__(self, fn: str, code: str, detail: str) -> None:
        super().__init__(f"{fn} failed: {detail}")
        self.fn, self.code, self.detail = fn, code, detail


STEP_RECORD_MODES = ("ledger", "anchored")
"""Run modes of the step records (:attr:`RunSpec.step_records`)."""
RUN_LEVEL_KEYS = ("round_timeout_s", "step_records", "blobs")
"""keys of a spec's ``config`` that are the run's, not :class:`TrainConfig` fields"""


def training_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`TrainConfig` fields of a spec's ``config`` (without :data:`RUN_LEVEL_KEYS`)."""
    return {k: v for k, v in config.items() if k not in RUN_LEVEL_KEYS}


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the one text a spec is proposed as."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def default_audit_rounds(rounds: int, every: int) -> tuple[int, ...]:
    """Every ``every``-th round and the last (the demo's schedule)."""
    if every < 1:
        raise RunSpecError(f"audit_every must be >= 1, got {every}")
    return tuple(sorted(set(range(every - 1, rounds, every)) | {rounds - 1}))


def _train_config(raw: Mapping[str, Any]) -> TrainConfig:
    try:
        return TrainConfig.from_dict(raw)
    except TrainConfigError as exc:
        raise RunSpecError(f"training config: {exc}") from exc


@dataclass(frozen=True)
class RunSpec:
    """What every participant approves (the chaincode's ``ProposeRun`` spec)."""

    participants: tuple[str, ...]
    schema_text: str
    config: TrainConfig
    threshold: int
    audit_rounds: tuple[int, ...]
    ceremony_id: str
    stop_rule: Mapping[str, Any] = field(default_factory=lambda: {"kind": "budget"})
    round_timeout_s: int = 30
    step_records: str = ""
    """``anchored`` (the default): each app signs its step statements off-ledger, hands
    them to its counterpart, which checks them before using the artefact, and commits one
    Merkle root per round (``chaincode/spec/steps.md``, :mod:`synthreg.chain.anchor`);
    ``ledger``: every G/D step is a transaction (the strict mode, and what differential
    privacy needs: its spend records name per-step records). Empty: the default for the
    config (``ledger`` with ``dp_epsilon``, else ``anchored``). A spec text without the key
    means ``ledger`` (specs agreed before anchored records)."""
    blobs: str = "served"
    """where secure aggregation's masked vectors live: ``served`` (the default: each merger
    keeps its own, pushes it to the round's other mergers before its ``Submit`` and serves
    it over mutual TLS; only hashes on the ledger; :mod:`synthreg.chain.blobs`) or
    ``ledger`` (a ``PutBlob`` each, as before issue 11). A spec text without the key means
    ``ledger`` (specs agreed before served blobs)."""

    def __post_init__(self) -> None:
        parts = list(self.participants)
        if not parts or parts != sorted(set(parts)):
            raise RunSpecError(f"participants must be sorted and unique, got {parts}")
        if not 1 <= self.threshold <= len(parts):
            raise RunSpecError(f"threshold {self.threshold} not in 1..{len(parts)}")
        if list(self.audit_rounds) != sorted(set(self.audit_rounds)) or any(
                not 0 <= r < self.rounds for r in self.audit_rounds):
            raise RunSpecError(f"audit rounds {list(self.audit_rounds)} must be ascending, "
                               f"unique and in 0..{self.rounds - 1}")
        if self.config.num_threads is None:
            raise RunSpecError("config.num_threads must be fixed (it changes the last bits of training)")
        try:
            StopRule.parse(self.stop_rule)
        except StopRuleError as exc:
            raise RunSpecError(str(exc)) from exc
        if self.round_timeout_s < 1:
            raise RunSpecError("round_timeout_s must be >= 1")
        if not self.step_records:  # frozen: the resolved default is part of the agreed text
            object.__setattr__(self, "step_records", "ledger" if self.config.dp_epsilon is not None else "anchored")
        if self.step_records not in STEP_RECORD_MODES:
            raise RunSpecError(f"step_records must be one of {list(STEP_RECORD_MODES)}, got {self.step_records!r}")
        if self.blobs not in BLOB_MODES:
            raise RunSpecError(f"blobs must be one of {list(BLOB_MODES)}, got {self.blobs!r}")
        if self.step_records == "anchored" and self.config.dp_epsilon is not None:
            # RecordPrivacySpend names a per-step discriminator record, which anchored runs do not write
            raise RunSpecError("differential privacy (dp_epsilon) needs step_records 'ledger': its spend records "
                               "name per-step records, which anchored runs do not write")
        schema = self.schema()  # parses, or raises SchemaFormatError
        try:
            self.config.condition_width(schema)  # condition_on names a categorical column of the schema
        except TrainConfigError as exc:
            raise RunSpecError(str(exc)) from exc

    @property
    def rule(self) -> StopRule:
        return StopRule.parse(self.stop_rule)

    @property
    def rounds(self) -> int:
        """The rounds the run trains: ``config.rounds``, capped by the privacy budget
        when there is one (:meth:`TrainConfig.trained_rounds`; every registry stops
        after the same round, recording reason ``privacy_budget``)."""
        return self.config.trained_rounds()

    @property
    def local_iters(self) -> int:
        return self.config.local_iters

    @property
    def max_update_norm(self) -> float | None:
        """Bound on the L2 norm of each registry's update delta per round
        (``config.max_update_norm``; :mod:`synthreg.gan.bound`): every merger clips
        its own before masking and checks the agreed average against it, the
        auditor checks each decrypted audit copy. None: unbounded."""
        return self.config.max_update_norm

    def schema(self) -> Schema:
        return Schema.loads(self.schema_text, source="run spec")

    @property
    def schema_sha256(self) -> str:
        return self.schema().hash()

    def registry_index(self, msp: str) -> int:
        """Position of ``msp`` among the participants: its seeds derive from it."""
        try:
            return self.participants.index(msp)
        except ValueError:
            raise RunSpecError(f"{msp} is not a participant ({list(self.participants)})") from None

    def to_wire(self) -> dict[str, Any]:
        return {
            "participants": list(self.participants),
            "schema_sha256": self.schema_sha256,
            "schema": self.schema_text,
            "config": {**self.config.to_dict(), "round_timeout_s": self.round_timeout_s,
                       **({"step_records": self.step_records} if self.step_records != "ledger" else {}),
                       **({"blobs": self.blobs} if self.blobs != "ledger" else {})},
            "threshold": self.threshold,
            "rounds": self.rounds,
            "local_iters": self.local_iters,
            "audit_rounds": list(self.audit_rounds),
            "stop_rule": dict(self.stop_rule),
            "ceremony_id": self.ceremony_id,
        }

    def to_json(self) -> str:
        return canonical_json(self.to_wire())

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """Parse a ``spec_json`` from the ledger, checking its internal consistency."""
        try:
            d = json.loads(text)
            cfg = dict(d["config"])
            timeout = int(cfg.pop("round_timeout_s", 30))
            step_records = str(cfg.pop("step_records", "ledger"))
            blobs = str(cfg.pop("blobs", "ledger"))
            config = _train_config(cfg)
            spec = cls(tuple(d["participants"]), str(d["schema"]), config, int(d["threshold"]),
                       tuple(int(r) for r in d["audit_rounds"]), str(d["ceremony_id"]),
                       dict(d["stop_rule"]), timeout, step_records, blobs)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RunSpecError):
                raise
            raise RunSpecError(f"malformed run spec: {exc}") from exc
        if d["schema_sha256"] != spec.schema_sha256:
            raise RunSpecError(f"spec's schema_sha256 {d['schema_sha256']} is not the hash of its schema "
                               f"({spec.schema_sha256})")
        if (int(d["rounds"]), int(d["local_iters"])) != (spec.rounds, spec.local_iters):
            raise RunSpecError("rounds/local_iters differ from the training config's")
        return spec


@dataclass(frozen=True)
class RunRecord:
    """``GetRun``: the spec (exact text and parsed) and its approval state."""

    run: str
    spec_json: str
    run_sha256: str
    status: str
    approvals: Mapping[str, Any]
    proposer: Mapping[str, Any]
    started: Mapping[str, Any] | None
    aborted: Mapping[str, Any] | None

    @property
    def spec(self) -> RunSpec:
        return RunSpec.from_json(self.spec_json)

    def check_hash(self) -> None:
        """The spec text is what the chaincode hashed (raises :class:`ApprovalRefusedError`)."""
        got = hashlib.sha256(self.spec_json.encode("utf-8")).hexdigest()
        if got != self.run_sha256:
            raise ApprovalRefusedError(f"run {self.run}: spec hashes to {got}, ledger says {self.run_sha256}")

    @classmethod
    def from_ledger(cls, raw: bytes) -> RunRecord:
        d = json.loads(raw)
        return cls(d["run"], d["spec_json"], d["run_sha256"], d["status"], d.get("approvals") or {},
                   d.get("proposer") or {}, d.get("started"), d.get("aborted"))


def check_local_facts(record: RunRecord, msp: str, local_schema: Schema, ceremony_id: str | None) -> RunSpec:
    """What a registry's client checks before its admin approves ``record``:
    the spec is what the ledger hashed, ``msp`` takes part, the run's schema is
    the registry's own (both hashes named otherwise), the audit ceremony the run
    names is the one on ``keys``. Data validation is the caller's (it has the CSV)."""
    record.check_hash()
    spec = record.spec
    if msp not in spec.participants:
        raise ApprovalRefusedError(f"{msp} is not a participant of run {record.run} ({list(spec.participants)})")
    if local_schema.hash() != spec.schema_sha256:
        raise ApprovalRefusedError(
            f"run {record.run}: its schema sha256 {spec.schema_sha256} differs from {msp}'s local schema "
            f"sha256 {local_schema.hash()}")
    if ceremony_id is None:
        raise ApprovalRefusedError("no audit-key ceremony is recorded on channel 'keys'")
    if ceremony_id != spec.ceremony_id:
        raise ApprovalRefusedError(f"run {record.run} names ceremony {spec.ceremony_id}, "
                                   f"the ledger's is {ceremony_id}")
    return spec


class LedgerRuns:
    """The runs functions of ``ganledger`` through one app's Contract."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def _call(self, fn: str, *args: str, submit: bool, orgs: Sequence[str] = ()) -> bytes:
        """Evaluate, or submit and wait until every peer of ``orgs`` has the block
        (the next approval, another org's, is endorsed against it)."""
        try:
            if submit:
                return submit_synced(self.contract, fn, *args, orgs=orgs).result
            return self.contract.evaluate(fn, *args)
        except ChaincodeError as exc:
            raise RunLedgerError(fn, exc.chaincode.code, exc.chaincode.detail) from exc
        except LedgerError as exc:
            raise RunLedgerError(fn, "", str(exc)) from exc

    def propose(self, run: str, spec: RunSpec) -> str:
        """Submit the spec; returns its run_sha256 (of the exact text sent)."""
        text = spec.to_json()
        self._call("ProposeRun", run, text, submit=True, orgs=spec.participants)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def approve(self, run: str, run_sha256: str, schema_sha256: str, orgs: Sequence[str] = ()) -> None:
        self._call("ApproveRun", run, canonical_json({"run_sha256": run_sha256, "schema_sha256": schema_sha256}),
                   submit=True, orgs=orgs)

    def abort(self, run: str, reason: str, orgs: Sequence[str] = ()) -> None:
        self._call("AbortRun", run, reason, submit=True, orgs=orgs)

    def get(self, run: str) -> RunRecord:
        return RunRecord.from_ledger(self._call("GetRun", run, submit=False))

    def list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(self._call("ListRuns", submit=False))
        return out


def participants_of(profile_msps: Sequence[str], wanted: Sequence[str] | None) -> tuple[str, ...]:
    """The sorted participant list: ``wanted`` if given, else every registry of the profile."""
    parts = sorted(set(wanted or profile_msps))
    unknown = [m for m in parts if m not in profile_msps]
    if unknown:
        raise RunSpecError(f"unknown registries {unknown} (known: {list(profile_msps)})")
    return tuple(parts)

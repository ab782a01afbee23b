"""A registry admin's side of a run: propose, approve (after local checks), abort, status, watch.

Who calls: ``synthreg run ...`` (:mod:`synthreg.cli.run_cmd`) and the demo. Each
function acts as one org's ``admin`` identity through that org's own peer.

The run config file (YAML) a proposer writes::

    run: my-run-2026-11          # optional, default run-<time>-<random>
    participants: [Registry1MSP, Registry2MSP, Registry3MSP]   # optional: every registry
    schema: schema.yaml          # the agreed schema file (or `dataset: rotterdam` for a bundled one)
    threshold: 2                 # optional: floor(N/2) + 1
    audit_every: 40              # or audit_rounds: [39, 79, 119]
    round_timeout_s: 30
    stop_rule: {kind: budget}
    step_records: anchored       # signed statements off-ledger, one Merkle root per app per round
                                 # (chaincode/spec/steps.md "Anchored step records"); or ledger: a
                                 # transaction per step (the default when dp_epsilon is set)
    blobs: served                # masked vectors kept in each registry, pushed to / fetched by the others
                                 # over mutual TLS, only hashes on the ledger (chain/blobs.py); or ledger
    training: {rounds: 120, local_iters: 10, seed: 0, num_threads: 1}   # any TrainConfig field, e.g.
    #   max_update_norm: 1.0     # bound on each registry's update per round (L2 norm of its
    #                            # weights minus the previous agreed average); null = unbounded

``training.max_update_norm`` (default 1.0, see :class:`~synthreg.gan.federated.TrainConfig`
for the measured honest norms) is the poisoning bound of :mod:`synthreg.gan.bound`:
every merger clips its registry's update to it before masking, checks the agreed
average against it (a violation stops the run naming the round), and the auditor
names a registry whose decrypted audit copy exceeds it. Raise it with
``local_iters``, the learning rates or the model size.

What fails when: :class:`~synthreg.chain.runs.RunSpecError` for a bad config
file, :class:`~synthreg.chain.runs.ApprovalRefusedError` when the run does not
fit the approver's local facts, a
:class:`~synthreg.data.schema.SchemaValidationError` naming row and column when
the approver's data breaks the run's schema (nothing is submitted then),
:class:`~synthreg.chain.runs.RunLedgerError` when the chaincode refuses.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fabric_protos.common import common_pb2

from synthreg.chain.keyvault import CHAINCODE, CHANNEL, LedgerKeyVault
from synthreg.chain.runs import (
    LedgerRuns,
    RunRecord,
    RunSpec,
    RunSpecError,
    check_local_facts,
    default_audit_rounds,
    participants_of,
)
from synthreg.data.datasets import dataset_schema
from synthreg.data.schema import Schema, load_registry_csv
from synthreg.gan.config import TrainConfig, TrainConfigError
from synthreg.ledger import LedgerError, evaluate_or_none
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile

__all__ = ["RunStatus", "approve_run", "propose_run", "run_status", "spec_from_config"]


def ceremony_id(profile: Profile, org: str) -> str | None:
    """The audit-key ceremony recorded on ``keys``, if any."""
    with open_gateway(profile, org, "admin") as gw:
        try:
            return LedgerKeyVault(gw.network(CHANNEL).contract(CHAINCODE)).get_ceremony().ceremony_id
        except Exception:  # the vault's "no ceremony" errors; reported by the caller
            return None


def spec_from_config(raw: dict[str, Any], profile: Profile, ceremony: str, base: Path) -> tuple[str, RunSpec]:
    """(run id, spec) from a run config document (see the module doc)."""
    known = {"run", "participants", "schema", "dataset", "threshold", "audit_every", "audit_rounds",
             "round_timeout_s", "stop_rule", "training", "step_records", "blobs"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RunSpecError(f"unknown run config keys {unknown} (known: {sorted(known)})")
    run = str(raw.get("run") or f"run-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}")
    if "schema" in raw:
        schema_text = (base / str(raw["schema"])).read_text(encoding="utf-8")
    elif "dataset" in raw:
        schema_text = dataset_schema(str(raw["dataset"])).dump()
    else:
        raise RunSpecError("the run config needs `schema: FILE` (or `dataset: NAME` for a bundled one)")
    training = dict(raw.get("training") or {})
    training.setdefault("num_threads", 1)
    try:
        config = TrainConfig.from_dict(training)
    except TrainConfigError as exc:
        raise RunSpecError(f"training: {exc}") from exc
    parts = participants_of(profile.msp_ids, raw.get("participants"))
    if "audit_rounds" in raw:
        audit = tuple(int(r) for r in raw["audit_rounds"])
    else:
        audit = default_audit_rounds(config.trained_rounds(), int(raw.get("audit_every", 40)))
    spec = RunSpec(parts, schema_text, config, int(raw.get("threshold", len(parts) // 2 + 1)), audit, ceremony,
                   dict(raw.get("stop_rule") or {"kind": "budget"}), int(raw.get("round_timeout_s", 30)),
                   str(raw.get("step_records", "")), str(raw.get("blobs", "served")))
    return run, spec


def load_run_config(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise RunSpecError(f"{path}: a run config is a YAML mapping")
    return doc


def propose_run(profile: Profile, org: str, run: str, spec: RunSpec) -> str:
    """``org``'s admin proposes ``spec`` as ``run``; returns its run_sha256."""
    if org not in spec.participants:
        raise RunSpecError(f"{org} proposes a run it does not take part in ({list(spec.participants)})")
    with open_gateway(profile, org, "admin") as gw:
        return LedgerRuns(gw.network("gan").contract("ganledger")).propose(run, spec)


def approve_run(profile: Profile, org: str, run: str, data: Path, schema_file: Path) -> RunRecord:
    """``org``'s admin approves ``run`` after its client checked the run against local
    facts: the spec is what the ledger hashed, the run's schema is ``schema_file``'s,
    the ceremony is the ledger's, and ``data`` validates against the schema. Any
    failure raises before anything is submitted."""
    local_schema = Schema.load(schema_file)
    ceremony = ceremony_id(profile, org)
    with open_gateway(profile, org, "admin") as gw:
        runs = LedgerRuns(gw.network("gan").contract("ganledger"))
        record = runs.get(run)
        spec = check_local_facts(record, org, local_schema, ceremony)
        load_registry_csv(data, spec.schema())  # typed error naming row and column
        runs.approve(run, record.run_sha256, spec.schema_sha256, orgs=spec.participants)
        return runs.get(run)


def abort_run(profile: Profile, org: str, run: str, reason: str) -> None:
    with open_gateway(profile, org, "admin") as gw:
        runs = LedgerRuns(gw.network("gan").contract("ganledger"))
        runs.abort(run, reason, orgs=runs.get(run).spec.participants)


@dataclass
class RunStatus:
    record: RunRecord
    heads: dict[str, dict[str, Any] | None]
    faults: dict[str, int]
    agreed_rounds: int
    missed: dict[str, list[int]] = field(default_factory=dict)
    """registry -> agreed rounds whose average it is not in (left out: t of n)"""

    def to_dict(self) -> dict[str, Any]:
        spec = self.record.spec
        return {"run": self.record.run, "status": self.record.status, "run_sha256": self.record.run_sha256,
                "participants": list(spec.participants), "approvals": sorted(self.record.approvals),
                "rounds": spec.rounds, "local_iters": spec.local_iters, "agreed_rounds": self.agreed_rounds,
                "missed_rounds": {m: self.missed.get(m, []) for m in spec.participants},
                "heads": self.heads, "faults": self.faults, "aborted": self.record.aborted}


def run_status(profile: Profile, org: str, run: str) -> RunStatus:
    """The run's approval state and every participant's progress, from the ledger."""
    with open_gateway(profile, org, "admin") as gw:
        contract = gw.network("gan").contract("ganledger")
        record = LedgerRuns(contract).get(run)
        spec = record.spec
        heads = {m: evaluate_or_none(contract, "GetStepHead", run, m) for m in spec.participants}
        faults = {m: len(evaluate_or_none(contract, "ListFaults", run, m) or []) for m in spec.participants}
        agreed = 0
        missed: dict[str, list[int]] = {}
        for rnd in range(spec.rounds):  # rounds agree in order: stop at the first that has not
            state = evaluate_or_none(contract, "GetRound", run, str(rnd))
            if not state or state.get("agreed") is not True:
                break
            agreed += 1
            for m in spec.participants:
                if m not in state["survivors"]:
                    missed.setdefault(m, []).append(rnd)
        return RunStatus(record, heads, faults, agreed, missed)


def watch_run(profile: Profile, org: str, run: str,
              on_event: Callable[[str, dict[str, Any], Any], bool]) -> None:
    """Stream the run's events from ``org``'s peer (replaying from the block the run
    was proposed in); ``on_event(name, payload, ganledger contract)`` returns False to stop."""
    with open_gateway(profile, org, "admin") as gw:
        network = gw.network("gan")
        record = LedgerRuns(network.contract("ganledger")).get(run)
        start = _block_of(network, str(record.proposer.get("txid", "")))
        with network.chaincode_events("ganledger", start_block=start) as stream:
            for ev in stream:
                try:
                    payload = json.loads(ev.payload)
                except ValueError:
                    continue
                if not isinstance(payload, dict) or not str(payload.get("run", "")).startswith(run):
                    continue
                if not on_event(ev.event_name, payload, network.contract("ganledger")):
                    return


def _block_of(network: Any, tx_id: str) -> int:
    """The number of the block holding ``tx_id`` (qscc), 0 if it cannot be found."""
    try:
        raw = network.contract("qscc").evaluate("GetBlockByTxID", network.name, tx_id)
    except LedgerError:
        return 0
    return int(common_pb2.Block.FromString(raw).header.number)

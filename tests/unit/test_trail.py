"""Audit-trail logic (record → verify) with real CKKS and an in-memory ganledger.

The in-memory contract stands in for the chaincode's PutRecord/GetRecord only to
test the trail's logic; the demo and the integration tests use the real ledger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthreg.crypto.ckks import create_audit_context
from synthreg.data.hashing import array_bytes, array_sha256
from synthreg.ledger.errors import ChaincodeInfo, EvaluateChaincodeError
from synthreg.secagg import average_sha256
from synthreg.trail.record import TrailRecorder
from synthreg.trail.txcheck import RecordRef
from synthreg.trail.verify import TrailReport
from synthreg.trail.verify import verify_run as _verify_run
from synthreg.workspace import TamperedArtefactError, Workspace

MSPS = ["Registry1MSP", "Registry2MSP", "Registry3MSP"]


class _NoTransactions:
    """The in-memory ledger has no transactions: their check (creator, write set,
    endorsers) is proven on the real network (tests/integration/test_trail_ledger.py)."""

    def check(self, ref: RecordRef) -> list[str]:
        return []


def verify_run(*args: Any, **kwargs: Any) -> TrailReport:
    return _verify_run(*args, tx_checker=_NoTransactions(), **kwargs)


class _Result:
    def __init__(self, tx_id: str) -> None:
        self.tx_id = tx_id


class FakeGanledger:
    """PutRecord/GetRecord with the chaincode's record shape (write-once); GetRun and
    GetAggregation from dicts; every other read NOT_FOUND (no secure-aggregation
    rounds, no step records)."""

    def __init__(self, store: dict[str, dict[str, str]], msp: str, role: str = "merger") -> None:
        self.store, self.msp, self.role = store, msp, role
        self.runs: dict[str, dict[str, object]] = {}  # GetRun documents (runs agreed on the ledger)
        self.aggregations: dict[str, dict[str, object]] = {}  # GetAggregation configs

    def submit(self, fn: str, key: str, value: str) -> _Result:
        assert fn == "PutRecord"
        if key in self.store:
            raise ValueError(f"ALREADY_EXISTS {key}")
        # like the chaincode: the value is stored (and returned) as a JSON object
        self.store[key] = {"key": key, "value": json.loads(value), "msp": self.msp, "role": self.role}
        return _Result(f"tx-{len(self.store)}")

    def evaluate(self, fn: str, key: str, *rest: str) -> bytes:
        found = {"GetRun": self.runs, "GetAggregation": self.aggregations, "GetRecord": self.store}.get(fn, {})
        if rest or key not in found:
            message = f"NOT_FOUND: {fn} {key} {' '.join(rest)}"
            raise EvaluateChaincodeError(message, ChaincodeInfo("NOT_FOUND", message))  # as Contract raises it
        return json.dumps(found[key]).encode()


def auditor_view(store: dict[str, dict[str, str]], participants: list[str] = MSPS) -> FakeGanledger:
    """The auditor's view of run1, opened as an aggregation of ``participants``."""
    fake = FakeGanledger(store, "Registry1MSP", "auditor")
    fake.aggregations = {"run1": {"run": "run1", "participants": participants}}
    return fake


@pytest.fixture(scope="module")
def keys():  # type: ignore[no-untyped-def]
    return create_audit_context()


def _run(tmp_path: Path, keys, rounds: int = 2):  # type: ignore[no-untyped-def]
    store: dict[str, dict[str, str]] = {}
    ws = {m: Workspace(tmp_path / m) for m in MSPS}
    rec = TrailRecorder("run1", MSPS, {m: FakeGanledger(store, m) for m in MSPS}, ws, keys.public, {rounds - 1})
    rec.record_run({"schema_sha256": "x"})
    rng = np.random.default_rng(0)
    for r in range(rounds):
        vecs = [rng.normal(size=5000).astype(np.float32) for _ in MSPS]
        rec.on_round(r, vecs, np.mean(np.stack(vecs), axis=0).astype(np.float32))
    return store, ws, rec


def test_recorded_run_verifies(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    store, ws, rec = _run(tmp_path, keys)
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws, 2)
    assert report.ok, report.failures
    assert report.records_checked == 6 and report.audited_rounds == [1]
    assert report.max_abs_error < 1e-6
    assert all(e.audit_ct_sha256 is None for e in rec.entries if e.round == 0)


def test_a_header_that_contradicts_the_approved_run_is_named(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    """For a run agreed on the ledger the auditor expects the approved participants and
    audited rounds; a header naming others (e.g. written to hide a registry) is reported."""
    store, ws, _ = _run(tmp_path, keys)
    auditor = auditor_view(store)
    spec = {"participants": list(MSPS), "audit_rounds": [0, 1], "schema_sha256": "x", "rounds": 2, "local_iters": 1}
    proposer = {"msp": "Registry1MSP", "role": "admin"}
    auditor.runs = {"run1": {"run": "run1", "status": "started", "spec_json": json.dumps(spec), "proposer": proposer}}
    report = verify_run("run1", auditor, keys.secret, keys.public, ws, 2)
    assert any("audit_rounds [1] differs from the approved run's [0, 1]" in f for f in report.failures)
    assert any("round 0: audit round without every survivor's ciphertext" in f for f in report.failures)
    auditor.runs = {"run1": {"run": "run1", "status": "proposed", "spec_json": json.dumps(spec), "proposer": proposer}}
    assert "run run1 was never started (status proposed)" in verify_run(
        "run1", auditor, keys.secret, keys.public, ws, 2).failures


def test_tampered_artefact_is_named(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    store, ws, rec = _run(tmp_path, keys)
    victim = next(e for e in rec.entries if e.msp_id == "Registry2MSP" and e.round == 1)
    path = ws["Registry2MSP"]._path(victim.weights_sha256)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedArtefactError):
        ws["Registry2MSP"].get(victim.weights_sha256)
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws, 2)
    assert not report.ok
    assert any("round 1" in f and victim.weights_sha256 in f for f in report.failures)


def test_wrong_average_is_caught_by_the_decrypted_mean(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    store: dict[str, dict[str, str]] = {}
    ws = {m: Workspace(tmp_path / m) for m in MSPS}
    rec = TrailRecorder("run1", MSPS, {m: FakeGanledger(store, m) for m in MSPS}, ws, keys.public, {0})
    rec.record_run({})
    vecs = [np.full(100, float(i), dtype=np.float32) for i in range(3)]
    rec.on_round(0, vecs, np.full(100, 1.5, dtype=np.float32))  # true mean is 1.0
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws, 1)
    assert any("decrypted mean differs" in f for f in report.failures)
    assert any("not the mean" in f for f in report.failures)


def test_record_by_wrong_role_is_flagged(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    store, ws, _ = _run(tmp_path, keys, rounds=1)
    store["run/run1/round/0/Registry3MSP"]["role"] = "generator"
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws, 1)
    assert any("not its merger" in f for f in report.failures)


def test_recorded_hashes_are_the_one_canonical_array_hash(tmp_path: Path) -> None:
    store: dict[str, dict[str, str]] = {}
    ws = {m: Workspace(tmp_path / m) for m in MSPS}
    rec = TrailRecorder("run1", MSPS, {m: FakeGanledger(store, m) for m in MSPS}, ws, None, set())  # type: ignore[arg-type]
    vecs = [np.linspace(-1, 1, 7, dtype=np.float32) * (i + 1) for i in range(3)]
    avg = np.mean(np.stack(vecs), axis=0).astype(np.float32)
    rec.on_round(0, vecs, avg)
    for entry, vec in zip(rec.entries, vecs, strict=True):
        assert entry.weights_sha256 == array_sha256(vec)
        assert entry.average_sha256 == array_sha256(avg) == average_sha256(avg)  # what secagg agrees on
        assert ws[entry.msp_id].get(entry.weights_sha256) == array_bytes(vec) == vec.astype("<f4").tobytes()


def test_attack_forged_run_header(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 item 3, the auditor's side: Registry2's generator wrote run1's header
    first, naming only itself (twice) and one round. The old auditor took registries
    and rounds from it and reported ok having checked no round; now the header is
    checked against the aggregation, its author named, and nothing-checked fails."""
    store: dict[str, dict[str, str]] = {}
    ws = {m: Workspace(tmp_path / m) for m in MSPS}
    forger = FakeGanledger(store, "Registry2MSP", "generator")
    forger.submit("PutRecord", "run/run1", json.dumps({"registries": ["Registry2MSP"] * 2, "config": {"rounds": 1}}))
    rec = TrailRecorder("run1", MSPS, {m: FakeGanledger(store, m) for m in MSPS}, ws, keys.public, {1})
    rng = np.random.default_rng(2)
    for r in range(2):
        vecs = [rng.normal(size=500).astype(np.float32) for _ in MSPS]
        avg = np.mean(np.stack(vecs), axis=0).astype(np.float32)
        rec.on_round(r, vecs, avg + np.float32(r))  # round 1's recorded average is wrong
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws)
    assert not report.ok
    assert "run header written by Registry2MSP/generator, not by the merger of Registry1MSP" in report.failures[0]
    assert any("run header registries ['Registry2MSP', 'Registry2MSP'] differs from the expected "
               "['Registry1MSP', 'Registry2MSP', 'Registry3MSP']" in f for f in report.failures)
    assert any("the header says 1 round(s), but round 1 was recorded by Registry1MSP" in f for f in report.failures)
    assert report.rounds_checked == 1 and report.records_checked == 3

    # the registries and rounds the auditor expects, given explicitly: the wrong average is found,
    # and round 1, audited though the header does not say so, is decrypted
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws, 2, registries=MSPS)
    assert any("round 1: recorded average is not the mean" in f for f in report.failures)
    assert "round 1: audit ciphertexts were recorded but the round is not among the audited rounds []" \
        in report.failures
    assert report.audited_rounds == [1] and report.records_checked == 6

    # without an aggregation or a run document, neither the author nor the registries can be checked
    report = verify_run("run1", FakeGanledger(store, "Registry1MSP", "auditor"), keys.secret, keys.public, ws)
    assert not report.ok
    assert any("neither a run document nor an aggregation" in f for f in report.failures)
    assert any("registries of run run1 are unknown" in f for f in report.failures)
    assert any("not a list of distinct registries" in f for f in report.failures)


def test_a_verification_that_checks_no_round_fails(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    store, ws, _ = _run(tmp_path, keys, rounds=1)
    report = verify_run("run1", auditor_view(store), keys.secret, keys.public, ws, 0)
    assert not report.ok and report.rounds_checked == 0
    assert report.failures == ["no round was checked (0 round(s) of 3 registries expected)"]


def _poisoned_run(tmp_path: Path, keys, poison: tuple[int, str] | None):  # type: ignore[no-untyped-def]
    """A 2-round run agreed on the ledger (run document with schema and config, both
    rounds audited): each registry's update is a small delta from the previous average
    (round 0: the initial weights of the run's model); ``poison`` = (round, registry)
    adds 1.0 to each of that registry's weights (norm 27; the CKKS audit key encodes
    |x| < 2^20 only: an audit copy of the 3.5e8 of the attack cannot be made, so such a
    poisoner would have to forge its copy, which the decrypted mean catches); the
    average recorded is the true mean (as secure aggregation would agree on)."""
    from synthreg.data.datasets import dataset_schema
    from synthreg.gan.bound import initial_vector
    from synthreg.gan.encoder import TabularEncoder
    from synthreg.gan.federated import TrainConfig

    schema = dataset_schema("rotterdam")
    cfg = TrainConfig(rounds=2, local_iters=1, batch_size=10, noise_dim=4, gen_dims=(8,), dis_dims=(8,), pac=2,
                      seed=3, num_threads=1)
    spec = {"participants": MSPS, "schema": schema.dump(), "schema_sha256": schema.hash(),
            "config": {**cfg.to_dict(), "round_timeout_s": 30}, "threshold": 2, "rounds": 2, "local_iters": 1,
            "audit_rounds": [0, 1], "stop_rule": {"kind": "budget"}, "ceremony_id": "c"}
    store: dict[str, dict[str, str]] = {}
    ws = {m: Workspace(tmp_path / m) for m in MSPS}
    rec = TrailRecorder("run1", MSPS, {m: FakeGanledger(store, m) for m in MSPS}, ws, keys.public, {0, 1})
    rec.record_run({"schema_sha256": schema.hash(), "config": cfg.to_dict()})
    prev = initial_vector(TabularEncoder(schema).output_dim, cfg.model_config(), cfg.seed)
    rng = np.random.default_rng(4)
    for r in range(2):
        vecs = []
        for m in MSPS:
            delta = rng.normal(size=prev.size)
            delta *= 0.5 / np.linalg.norm(delta)  # honest: norm 0.5 < the bound 1.0
            vecs.append((prev + delta + (1.0 if poison == (r, m) else 0.0)).astype(np.float32))
        prev = np.mean(np.stack(vecs), axis=0).astype(np.float32)
        rec.on_round(r, vecs, prev)
    auditor = auditor_view(store)
    auditor.runs = {"run1": {"run": "run1", "status": "started", "spec_json": json.dumps(spec),
                             "proposer": {"msp": "Registry1MSP", "role": "admin"}}}
    return verify_run("run1", auditor, keys.secret, keys.public, ws)


def test_attack_poisoned_update_named_by_the_auditor(tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, attack 2, the auditor's side: on an audited round, a registry whose
    decrypted audit copy lies beyond the run's max_update_norm (1.0) from the previous
    agreed average is named, in round 0 too (the auditor builds the initial weights
    from the run's schema, model config and seed); an honest run verifies."""
    honest = _poisoned_run(tmp_path / "honest", keys, None)
    assert honest.ok, honest.failures
    assert honest.audited_rounds == [0, 1]
    for rnd, who in ((0, "Registry2MSP"), (1, "Registry3MSP")):
        report = _poisoned_run(tmp_path / f"{rnd}", keys, (rnd, who))
        assert not report.ok
        named = [f for f in report.failures if "beyond the update bound" in f]
        assert named == report.failures and len(named) == 2  # the rest of the trail is consistent
        assert any(f.startswith(f"round {rnd}: {who}'s update has norm ") and "(decrypted audit copy)" in f
                   for f in named), report.failures
        assert f"round {rnd}: the agreed average moved" in " ".join(named)
        assert not any(m in f for f in named for m in MSPS if m != who)  # only the poisoner is named

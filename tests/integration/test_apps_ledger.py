"""Registries as separate services on the REAL local network (DESIGN.md §2, §8).

One 3-registry run through 9 separate app processes (``registry up`` per
registry), agreed on the ledger (``run propose`` + three ``run approve``); its
final generator is compared bit for bit with the same config trained through
the single-process ledger path; every step root (anchored step records, the
default), local update and aggregation entry is checked against the creator of
its transaction in the block (qscc), not against the record's payload. The refusals of ``run approve`` (data that breaks
the schema, another schema) and of ``sample --verify`` (a changed weight) too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
from apps_support import CONFIG, Consortium, make_consortium
from cryptography import x509
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import transaction_pb2
from typer.testing import CliRunner

from synthreg.apps import admin
from synthreg.apps.registry import RegistryStack
from synthreg.chain.runs import ApprovalRefusedError, LedgerRuns, RunLedgerError, RunSpec
from synthreg.cli.main import app as main_app
from synthreg.data.schema import Schema, SchemaValidationError, load_registry_csv
from synthreg.gan.bundle import BundleVerificationError, load_bundle, verify_bundle
from synthreg.gan.federated import build_encoder
from synthreg.ledger import Contract
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile

ROLE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


@pytest.fixture(scope="module")
def consortium(profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return make_consortium(profile, tmp_path_factory.mktemp("apps"))


def _propose(c: Consortium, run: str, **overrides: object) -> RunSpec:
    return c.propose(run, **overrides)


@dataclass
class AppsRun:
    run: str
    spec: RunSpec
    states: dict[str, Path]


@pytest.fixture(scope="module")
def apps_run(consortium: Consortium) -> Iterator[AppsRun]:
    """One run through 9 app processes, start to finish, in the default modes (anchored
    step records, served blobs)."""
    c = consortium
    run = f"apps-{uuid.uuid4().hex[:10]}"
    states = {m: c.base / m / "state" for m in c.profile.msp_ids}
    spec = c.run_through_apps(run, states)
    yield AppsRun(run, spec, states)


def test_nine_processes_train_the_same_model_as_the_single_process_ledger_path(
        consortium: Consortium, apps_run: AppsRun) -> None:
    c, spec = consortium, apps_run.spec
    bundles = [load_bundle(apps_run.states[m] / "bundles" / apps_run.run) for m in c.profile.msp_ids]
    assert len({b.average_sha256 for b in bundles}) == 1  # every merger holds the agreed final model
    # the same config through the single-process ledger path (one driver, every app identity)
    frames = [load_registry_csv(c.data[m], spec.schema()) for m in c.profile.msp_ids]
    assert build_encoder(frames, spec.schema(), spec.config).hash() == bundles[0].encoder.hash()  # secure == clear sum
    single = c.reference_generator(spec, f"{apps_run.run}-single")
    assert np.array_equal(bundles[0].generator_vector(), single)


def _creator(network_contract: Contract, channel: str, tx_id: str) -> tuple[str, str]:
    """(MSP ID, synthreg.role) of the creator of ``tx_id``, read from its block via qscc."""
    raw = network_contract.evaluate("GetTransactionByID", channel, tx_id)
    envelope = transaction_pb2.ProcessedTransaction.FromString(raw).transactionEnvelope
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    ident = identities_pb2.SerializedIdentity.FromString(header.creator)
    cert = x509.load_pem_x509_certificate(ident.id_bytes)
    attrs = json.loads(cert.extensions.get_extension_for_oid(ROLE_OID).value.value)
    return ident.mspid, attrs["attrs"]["synthreg.role"]


def test_every_record_was_submitted_by_the_right_app(consortium: Consortium, apps_run: AppsRun) -> None:
    c, run, spec = consortium, apps_run.run, apps_run.spec
    with open_gateway(c.profile, c.profile.msp_ids[0], "auditor") as gw:
        net = gw.network("gan")
        qscc, cc = net.contract("qscc"), net.contract("ganledger")
        checked = 0
        assert spec.step_records == "anchored"  # the default: one root per app per round
        for m in spec.participants:
            for rnd in range(spec.rounds):
                roots = json.loads(cc.evaluate("GetStepRoot", run, m, str(rnd)))
                for role in ("generator", "discriminator"):
                    assert roots[role]["count"] == spec.local_iters
                    assert _creator(qscc, net.name, roots[role]["txid"]) == (m, role)
                    checked += 1
                update = json.loads(cc.evaluate("GetLocalUpdate", run, m, str(rnd)))  # recorded by its Submit
                assert _creator(qscc, net.name, update["txid"]) == (m, "merger") and update["role"] == "merger"
                checked += 1
        for agg, rounds in ((f"{run}/encoder", 1), (run, spec.rounds)):
            for rnd in range(rounds):
                state = json.loads(cc.evaluate("GetRound", agg, str(rnd)))
                assert state["agreed"] is True and sorted(state["survivors"]) == list(spec.participants)
                for m in spec.participants:
                    for tx in (state["advertised"][m]["txid"], state["submissions"][m]["txid"]):
                        assert _creator(qscc, net.name, tx) == (m, "merger")
                        checked += 1
                    if agg == run:  # the training rounds' Submits recorded the local updates
                        update = json.loads(cc.evaluate("GetLocalUpdate", run, m, str(rnd)))
                        assert update["txid"] == state["submissions"][m]["txid"]
    assert checked == len(spec.participants) * (spec.rounds * (2 + 1) + 2 * (1 + spec.rounds))


def test_data_that_breaks_the_schema_cannot_approve(consortium: Consortium, tmp_path: Path) -> None:
    c = consortium
    run = f"badcsv-{uuid.uuid4().hex[:10]}"
    _propose(c, run)
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(c.data["Registry2MSP"])
    frame.loc[7, "age"] = 999  # far outside the schema's range
    frame.to_csv(bad, index=False)
    with pytest.raises(SchemaValidationError) as err:
        admin.approve_run(c.profile, "Registry2MSP", run, bad, c.schema_file)
    assert err.value.column == "age" and err.value.row == 7
    admin.approve_run(c.profile, "Registry1MSP", run, c.data["Registry1MSP"], c.schema_file)
    with open_gateway(c.profile, "Registry3MSP", "admin") as gw:
        record = LedgerRuns(gw.network("gan").contract("ganledger")).get(run)
    assert record.status == "proposed" and sorted(record.approvals) == ["Registry1MSP"]


def test_approve_with_another_schema_is_refused_naming_both_hashes(consortium: Consortium, tmp_path: Path) -> None:
    c = consortium
    run = f"schema-{uuid.uuid4().hex[:10]}"
    spec = _propose(c, run)
    doc = Schema.load(c.schema_file).to_dict()
    age = next(col for col in doc["columns"] if col["name"] == "age")
    age["max"] = float(age["max"]) + 1
    other = tmp_path / "other.yaml"
    other.write_text(Schema.from_dict(doc).dump())
    local = Schema.load(other).hash()
    with pytest.raises(ApprovalRefusedError) as err:
        admin.approve_run(c.profile, "Registry3MSP", run, c.data["Registry3MSP"], other)
    assert spec.schema_sha256 in str(err.value) and local in str(err.value)
    # the chaincode refuses it too, whatever a client checks
    with open_gateway(c.profile, "Registry3MSP", "admin") as gw:
        runs = LedgerRuns(gw.network("gan").contract("ganledger"))
        with pytest.raises(RunLedgerError) as cc_err:
            runs.approve(run, runs.get(run).run_sha256, local)
        assert cc_err.value.code == "PRECONDITION_FAILED"
        assert spec.schema_sha256 in str(cc_err.value) and local in str(cc_err.value)
        assert runs.get(run).status == "proposed"


def test_sample_verify_refuses_a_bundle_with_one_weight_changed(
        consortium: Consortium, apps_run: AppsRun, tmp_path: Path) -> None:
    c = consortium
    src = apps_run.states["Registry1MSP"] / "bundles" / apps_run.run
    with open_gateway(c.profile, "Registry2MSP", "admin") as gw:
        cc = gw.network("gan").contract("ganledger")

        def agreed(agg_run: str, rnd: int) -> str:
            state = json.loads(cc.evaluate("GetRound", agg_run, str(rnd)))
            assert state["agreed"] is True
            return str(next(iter(set(state["results"].values()))))

        verify_bundle(load_bundle(src), agreed)  # the genuine bundle passes
        # one weight changed, and every hash in bundle.json made to match it: only the ledger can tell
        tampered = tmp_path / "tampered"
        shutil.copytree(src, tampered)
        _change_one_weight(tampered)
        forged = load_bundle(tampered)
        assert forged.average_sha256 == forged.average_sha256_computed() != load_bundle(src).average_sha256
        with pytest.raises(BundleVerificationError) as err:
            verify_bundle(forged, agreed)
        assert forged.average_sha256 in str(err.value) and load_bundle(src).average_sha256 in str(err.value)
    res = CliRunner().invoke(main_app, ["sample", "--model", str(tampered), "--rows", "5", "--seed", "0", "--out",
                                          str(tmp_path / "s.csv"), "--verify", "--home", str(c.profile.home),
                                          "--org", "Registry2MSP"])
    assert res.exit_code == 1 and not (tmp_path / "s.csv").exists(), res.output


def _change_one_weight(bundle_dir: Path) -> None:
    """Add 0.01 to one generator weight and rewrite bundle.json's hashes to match."""
    model = bundle_dir / "model.safetensors"
    tensors = safetensors.numpy.load_file(str(model))
    name = next(k for k in sorted(tensors) if k != "discriminator_vector")
    tensors[name].flat[0] += np.float32(0.01)
    model.write_bytes(safetensors.numpy.save(tensors, metadata={"format": json.loads(
        (bundle_dir / "bundle.json").read_text())["format"]}))
    manifest = json.loads((bundle_dir / "bundle.json").read_text())
    manifest["files"]["model.safetensors"] = hashlib.sha256(model.read_bytes()).hexdigest()
    (bundle_dir / "bundle.json").write_text(json.dumps(manifest))
    manifest["average_sha256"] = load_bundle(bundle_dir).average_sha256_computed()
    (bundle_dir / "bundle.json").write_text(json.dumps(manifest))


def test_abort_stops_every_app_cleanly(consortium: Consortium, tmp_path: Path) -> None:
    """An admin's recorded abort mid-run: every app stops working on the run, says why, and idles on."""
    c = consortium
    run = f"abort-{uuid.uuid4().hex[:10]}"
    stacks = [RegistryStack(c.profile.home, m, tmp_path / m) for m in c.profile.msp_ids]
    try:
        for st in stacks:
            st.up(c.data[st.msp])
        _propose(c, run, training={**CONFIG, "rounds": 200}, audit_rounds=[])
        for m in c.profile.msp_ids:
            admin.approve_run(c.profile, m, run, c.data[m], c.schema_file)
        with open_gateway(c.profile, "Registry3MSP", "admin") as gw:
            cc = gw.network("gan").contract("ganledger")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until training is under way (round 1 reached)
                with contextlib.suppress(Exception):
                    if json.loads(cc.evaluate("GetStepHead", run, "Registry1MSP"))["round"] >= 1:
                        break
                time.sleep(0.5)
        admin.abort_run(c.profile, "Registry2MSP", run, "registry maintenance window")
        outcomes = {st.msp: st.wait_idle(run, timeout=120) for st in stacks}
        assert all(o == {r: "failed" for r in ("generator", "discriminator", "merger")} for o in outcomes.values())
        for st in stacks:
            for role in ("generator", "discriminator", "merger"):
                text = (st.state / "runs" / run / f"{role}.failed").read_text()
                assert "aborted" in text, (st.msp, role, text)
            deadline = time.monotonic() + 20  # each app writes "idle" just after its marker
            while not all(s.alive and s.status.get("phase") == "idle" for s in st.status()):
                assert time.monotonic() < deadline, [s.to_dict() for s in st.status()]
                time.sleep(0.2)
        status = admin.run_status(c.profile, "Registry1MSP", run)
        assert status.record.status == "aborted" and status.record.aborted["reason"] == "registry maintenance window"
        assert status.agreed_rounds < 200
    finally:
        for st in stacks:
            st.down(grace=5)


def test_a_tampered_fake_batch_is_refused_and_recorded_by_the_discriminator_process(
        consortium: Consortium, tmp_path: Path) -> None:
    """Registry2's first fake batch is altered in its workspace before the generator
    process writes it (the workspace keeps an existing file): its discriminator process
    refuses it, records the fault on the ledger, and the registry's three apps stop the run.
    Per-step records (the strict mode); test_apps_anchored has the default mode's."""
    c = consortium
    run = f"tamper-{uuid.uuid4().hex[:10]}"
    spec = _propose(c, run, audit_rounds=[], step_records="ledger")
    msp = "Registry2MSP"
    digest = c.plant_tampered_first_batch(spec, msp, tmp_path / msp)

    stacks = {m: RegistryStack(c.profile.home, m, tmp_path / m) for m in c.profile.msp_ids}
    try:
        for m, st in stacks.items():
            st.up(c.data[m], exit_after=1)
        for m in c.profile.msp_ids:
            admin.approve_run(c.profile, m, run, c.data[m], c.schema_file)
        stack = stacks[msp]
        outcome = stack.wait_idle(run, timeout=180)
        assert outcome == {"generator": "failed", "discriminator": "failed", "merger": "failed"}
        assert "fake_hash_mismatch" in (stack.state / "runs" / run / "discriminator.failed").read_text()
        with open_gateway(c.profile, "Registry1MSP", "auditor") as gw:
            cc = gw.network("gan").contract("ganledger")
            faults = json.loads(cc.evaluate("ListFaults", run, msp))
            head = json.loads(cc.evaluate("GetStepHead", run, msp))
        assert [(f["kind"], f["expected"], f["role"]) for f in faults] == [("fake_hash_mismatch", digest,
                                                                           "discriminator")]
        assert (head["round"], head["iter"], head["phase"]) == (0, 0, "g")  # D never trained on it
        # the consortium's answer: an admin aborts the run; the other registries' apps stop too
        admin.abort_run(c.profile, "Registry1MSP", run, "Registry2MSP recorded a step fault")
        for m in ("Registry1MSP", "Registry3MSP"):
            assert set(stacks[m].wait_idle(run, timeout=120).values()) == {"failed"}
    finally:
        for st in stacks.values():
            st.down(grace=5)
        with contextlib.suppress(Exception):
            admin.abort_run(c.profile, "Registry1MSP", run, "test over")

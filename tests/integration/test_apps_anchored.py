"""Anchored step records (``step_records: anchored``) with the registries' 9 app processes
on a real network: same model as the strict path, one root per app per round instead of
two transactions per step, and a tampered fake batch still refused and recorded."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from apps_support import CONFIG, Consortium, make_consortium

from synthreg.apps import admin
from synthreg.apps.registry import RegistryStack
from synthreg.chain.anchor import SignedStatement, StatementStore, merkle_root, verify_statement
from synthreg.gan.bundle import load_bundle
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile


@pytest.fixture(scope="module")
def consortium(profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return make_consortium(profile, tmp_path_factory.mktemp("anchored"))


def _cert(c: Consortium, msp: str, role: str) -> object:
    from cryptography import x509
    pem = min((c.profile.org(msp).user_msp(role) / "signcerts").glob("*.pem")).read_bytes()
    return x509.load_pem_x509_certificate(pem)


def test_anchored_run_trains_the_strict_model_with_one_root_per_app_per_round(
        consortium: Consortium, tmp_path: Path) -> None:
    c = consortium
    run = f"anchored-{uuid.uuid4().hex[:10]}"
    states = {m: tmp_path / m for m in c.profile.msp_ids}
    spec = c.run_through_apps(run, states, timeout=300, step_records="anchored")
    assert spec.step_records == "anchored"
    bundle = load_bundle(states[c.profile.msp_ids[0]] / "bundles" / run)
    reference = c.reference_generator(spec, f"{run}-ref")  # the strict single-process ledger path
    assert np.array_equal(bundle.generator_vector(), reference)
    with open_gateway(c.profile, "Registry1MSP", "auditor") as gw:
        cc = gw.network("gan").contract("ganledger")
        for m in c.profile.msp_ids:
            store = StatementStore(states[m] / "workspace")
            for rnd in range(CONFIG["rounds"]):
                with pytest.raises(Exception, match="NOT_FOUND"):  # no per-step record
                    cc.evaluate("GetStep", run, m, str(rnd), "0")
                roots = json.loads(cc.evaluate("GetStepRoot", run, m, str(rnd)))
                for role in ("generator", "discriminator"):
                    sts = [store.get(run, rnd, it, role) for it in range(CONFIG["local_iters"])]
                    assert all(s is not None for s in sts)
                    signed = [s for s in sts if s is not None]
                    for s in signed:
                        verify_statement(s, _cert(c, m, role), run, m, role)  # type: ignore[arg-type]
                    assert roots[role]["merkle_root"] == merkle_root(signed)
                    assert roots[role]["count"] == CONFIG["local_iters"]
            assert json.loads(cc.evaluate("GetStepHead", run, m))["phase"] == "stopped"
    report = c.audit(run, states, tmp_path / "auditor")
    assert report.ok, report.failures
    assert report.steps_checked > 0


def test_a_tampered_fake_batch_is_refused_and_recorded_with_the_signed_statement(
        consortium: Consortium, tmp_path: Path) -> None:
    """As the strict test: Registry2's first fake batch is altered in its workspace; in
    anchored mode its discriminator refuses it after checking the generator's signed
    statement, and records the fault with that statement as evidence."""
    c = consortium
    run = f"anchored-tamper-{uuid.uuid4().hex[:10]}"
    spec = c.propose(run, audit_rounds=[], step_records="anchored")
    msp = "Registry2MSP"
    digest = c.plant_tampered_first_batch(spec, msp, tmp_path / msp)
    stacks = {m: RegistryStack(c.profile.home, m, tmp_path / m) for m in c.profile.msp_ids}
    try:
        for m, st in stacks.items():
            st.up(c.data[m], exit_after=1)
        c.approve_all(run)
        stack = stacks[msp]
        outcome = stack.wait_idle(run, timeout=180)
        assert outcome == {"generator": "failed", "discriminator": "failed", "merger": "failed"}
        assert "fake_hash_mismatch" in (stack.state / "runs" / run / "discriminator.failed").read_text()
        with open_gateway(c.profile, "Registry1MSP", "auditor") as gw:
            cc = gw.network("gan").contract("ganledger")
            faults = json.loads(cc.evaluate("ListFaults", run, msp))
            with pytest.raises(Exception, match="NOT_FOUND"):
                cc.evaluate("GetStepRoot", run, msp, "0")  # nothing of the round was anchored
        assert [(f["kind"], f["expected"], f["role"]) for f in faults] == [("fake_hash_mismatch", digest,
                                                                           "discriminator")]
        evidence = SignedStatement.from_json(json.dumps(json.loads(faults[0]["detail"])["signed_statement"]))
        fields = verify_statement(evidence, _cert(c, msp, "generator"), run, msp, "generator")  # type: ignore[arg-type]
        assert (fields["round"], fields["iter"], fields["fake_sha256"]) == (0, 0, digest)
        assert StatementStore(stack.state / "workspace").get(run, 0, 0, "discriminator") is None  # D never trained
        admin.abort_run(c.profile, "Registry1MSP", run, "Registry2MSP recorded a step fault")
        for m in ("Registry1MSP", "Registry3MSP"):
            assert set(stacks[m].wait_idle(run, timeout=120).values()) == {"failed"}
    finally:
        for st in stacks.values():
            st.down(grace=5)
        with contextlib.suppress(Exception):
            admin.abort_run(c.profile, "Registry1MSP", run, "test over")

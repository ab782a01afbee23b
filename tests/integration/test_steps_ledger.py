"""Accountable G/D steps on the real `gan` channel (DESIGN.md §3).

Each registry's generator and discriminator sign with their own identities; the
fake batch and the feedback travel through the registry's workspace with their
hashes on the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthreg.chain.steps import LedgerSteps, RegistryStepClients, StepFaultError, StepLedgerError
from synthreg.data import Schema, load_dataset, split_registries
from synthreg.gan.federated import TrainConfig, train_federated
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile
from synthreg.workspace import Workspace

TINY = TrainConfig(rounds=2, local_iters=2, batch_size=20, noise_dim=8, gen_dims=(16, 16),
                   dis_dims=(16,), pac=5, seed=3, num_threads=1)


@pytest.fixture(scope="module")
def frames() -> list[pd.DataFrame]:
    parts = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    return [p.head(100) for p in parts]


@pytest.fixture
def clients(profile: Profile, tmp_path: Path) -> Iterator[list[RegistryStepClients]]:
    msps = list(profile.msp_ids)
    with ExitStack() as stack:
        def contract(msp: str, role: str):
            return stack.enter_context(open_gateway(profile, msp, role)).network("gan").contract("ganledger")

        yield [RegistryStepClients(m, contract(m, "generator"), contract(m, "discriminator"),
                                   Workspace(tmp_path / m)) for m in msps]


def test_every_step_is_on_the_ledger_and_training_is_unchanged(
        clients: list[RegistryStepClients], profile: Profile, frames: list[pd.DataFrame], unique: str) -> None:
    schema = Schema.bundled("rotterdam")
    run = f"steps-{unique}"
    steps = LedgerSteps(run, clients, profile.msp_ids, keep_rounds={1})
    recorded = train_federated(frames, schema, TINY, progress=False, step=steps)
    plain = train_federated(frames, schema, TINY, progress=False)
    # the ledger hand-over moves the very same float32 bytes: the same model comes out
    assert np.array_equal(recorded.generator_vector(), plain.generator_vector())
    assert [h.d_loss for h in recorded.history] == [h.d_loss for h in plain.history]
    assert steps.tx_counts == {c.msp: 2 * TINY.rounds * TINY.local_iters for c in clients}

    reader = clients[0].discriminator
    for c in clients:
        for rnd in range(TINY.rounds):
            for it in range(TINY.local_iters):
                rec = json.loads(reader.evaluate("GetStep", run, c.msp, str(rnd), str(it)))
                g, d = rec["generator"], rec["discriminator"]
                assert (g["msp"], g["role"], d["msp"], d["role"]) == (c.msp, "generator", c.msp, "discriminator")
                assert d["fake_sha256"] == g["fake_sha256"]
                # kept round: the artefacts are still in the workspace and match; others were pruned
                assert (g["fake_sha256"] in c.workspace) == (rnd == 1)
                assert (d["feedback_sha256"] in c.workspace) == (rnd == 1)
        head = json.loads(reader.evaluate("GetStepHead", run, c.msp))
        assert head == {"round": TINY.rounds - 1, "iter": TINY.local_iters - 1, "phase": "d"}

    # the budget is spent: each generator records the stop; a further step is refused
    steps.stop(TINY.rounds - 1, TINY.local_iters - 1, {c.msp: 0.0 for c in clients})
    assert json.loads(reader.evaluate("GetStepHead", run, clients[0].msp))["phase"] == "stopped"
    with pytest.raises(StepLedgerError) as err:
        steps._submit(clients[0].generator, clients[0].msp, "RecordGeneratorStep", {
            "round": TINY.rounds, "iter": 0, "fake_sha256": "a" * 64, "g_weights_sha256": "b" * 64,
            "noise_seed": 1, "batch_size": TINY.batch_size})
    assert err.value.code == "PRECONDITION_FAILED" and "stopped" in err.value.detail


class _TamperingWorkspace(Workspace):
    """A workspace in which the fake batch is altered after it was stored."""

    def put(self, data: bytes) -> str:
        digest = super().put(data)
        if not getattr(self, "tampered", False):
            self.tampered = True
            path = self._path(digest)
            path.write_bytes(b"\x00" * 4 + path.read_bytes()[4:])
        return digest


def test_a_tampered_fake_batch_is_refused_and_recorded_as_a_fault(
        clients: list[RegistryStepClients], profile: Profile, frames: list[pd.DataFrame], unique: str,
        tmp_path: Path) -> None:
    schema = Schema.bundled("rotterdam")
    run = f"steps-fault-{unique}"
    victim = clients[1]
    bad = [c if c is not victim else RegistryStepClients(c.msp, c.generator, c.discriminator,
                                                         _TamperingWorkspace(tmp_path / "bad"))
           for c in clients]
    with pytest.raises(StepFaultError) as err:
        train_federated(frames, schema, TINY, progress=False, step=LedgerSteps(run, bad, profile.msp_ids))
    assert (err.value.msp, err.value.round, err.value.iter, err.value.kind) == (victim.msp, 0, 0,
                                                                                 "fake_hash_mismatch")
    faults = json.loads(victim.generator.evaluate("ListFaults", run, victim.msp))
    assert [(f["kind"], f["role"], f["round"], f["iter"]) for f in faults] == [
        ("fake_hash_mismatch", "discriminator", 0, 0)]
    # the discriminator never recorded a step on the altered batch
    rec = json.loads(victim.generator.evaluate("GetStep", run, victim.msp, "0", "0"))
    assert rec["discriminator"] is None


def test_roles_are_checked_by_the_chaincode(clients: list[RegistryStepClients], unique: str) -> None:
    c = clients[0]
    payload = {"round": 0, "iter": 0, "fake_sha256": "a" * 64, "real_sha256": "b" * 64,
               "feedback_sha256": "c" * 64, "d_weights_sha256": "d" * 64, "d_loss": 0.5, "g_loss": -0.1}
    steps = LedgerSteps(f"steps-roles-{unique}", clients, [x.msp for x in clients])
    with pytest.raises(StepLedgerError) as err:  # the generator may not record the discriminator's step
        steps._submit(c.generator, c.msp, "RecordDiscriminatorStep", payload)
    assert err.value.code == "ACCESS_DENIED"
    with pytest.raises(StepLedgerError) as err:  # nor may the discriminator step before the generator did
        steps._submit(c.discriminator, c.msp, "RecordDiscriminatorStep", payload)
    assert err.value.code == "PRECONDITION_FAILED"


def test_the_auditor_checks_the_step_records(
        clients: list[RegistryStepClients], profile: Profile, frames: list[pd.DataFrame], unique: str) -> None:
    from synthreg.chain.secagg import AggregationConfig, open_aggregation
    from synthreg.crypto.ckks import create_audit_context
    from synthreg.trail.record import TrailRecorder
    from synthreg.trail.verify import verify_run

    keys = create_audit_context()
    schema = Schema.bundled("rotterdam")
    run = f"steps-audit-{unique}"
    msps = [c.msp for c in clients]
    workspaces = {c.msp: c.workspace for c in clients}
    with ExitStack() as stack:
        mergers = {m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
                   for m in msps}
        # the header needs an owner on the ledger: an aggregation whose first participant is msps[0]
        open_aggregation(mergers[msps[0]], msps[0], run, AggregationConfig.default(msps, 1))
        recorder = TrailRecorder(run, msps, mergers, workspaces, keys.public, {1})
        recorder.record_run({"config": TINY.to_dict(), "schema_sha256": schema.hash(), "step_records": "ledger"})
        steps = LedgerSteps(run, clients, profile.msp_ids, keep_rounds={1})
        train_federated(frames, schema, TINY, progress=False, step=steps, on_round=recorder.on_round)
    with open_gateway(profile, msps[0], "auditor") as gw:
        contract = gw.network("gan").contract("ganledger")
        report = verify_run(run, contract, keys.secret, keys.public, workspaces)
        assert report.ok, report.failures
        assert report.steps_checked == len(msps) * TINY.local_iters  # the audited round's steps
        # a kept feedback artefact altered after the fact is named
        step = json.loads(contract.evaluate("GetStep", run, msps[2], "1", "0"))
        path = workspaces[msps[2]]._path(step["discriminator"]["feedback_sha256"])
        path.write_bytes(b"\x01" + path.read_bytes()[1:])
        report = verify_run(run, contract, keys.secret, keys.public, workspaces)
    assert len(report.failures) == 1 and report.failures[0].startswith(f"{msps[2]} round 1 iter 0: artefact")


def test_attack_colluding_registries_forge_records(clients: list[RegistryStepClients], unique: str) -> None:
    """Issue 10 attack 5: two registries running modified chaincode endorse a write to
    the third's keys. Once a registry's key is on the ledger (here its step head), a
    change of it needs that registry's peer: the same write set, endorsed by the other
    two peers only, is invalidated at commit (ENDORSEMENT_POLICY_FAILURE). A modified
    chaincode produces just such a transaction; this one is built with Registry3's own
    discriminator so that the unmodified chaincode simulates it, and the peers of
    Registry1 and Registry2 alone endorse it."""
    from synthreg.ledger import CommitError
    from synthreg.ledger.sync import submit_synced
    from synthreg.trail.txcheck import TxChecker, check_record_transactions, composite_key

    victim, others = clients[2], [c.msp for c in clients[:2]]
    run = f"steps-collude-{unique}"
    gen = {"round": 0, "iter": 0, "fake_sha256": "a" * 64, "g_weights_sha256": "b" * 64,
           "noise_seed": 1, "batch_size": 20}
    disc = {"round": 0, "iter": 0, "fake_sha256": "a" * 64, "real_sha256": "c" * 64,
            "feedback_sha256": "d" * 64, "d_weights_sha256": "e" * 64, "d_loss": 0.5, "g_loss": -0.1}
    # the victim's first step creates its head, bound to its peer; the Gateway of its
    # own peer endorses there first, so its own peer is among the endorsers
    first = submit_synced(victim.generator, "RecordGeneratorStep", run, json.dumps(gen),
                          orgs=[c.msp for c in clients])
    facts = TxChecker(victim.generator.network).facts(first.tx_id)
    head_key = composite_key("step_head", run, victim.msp)
    assert head_key in facts.writes and victim.msp in {e.msp_id for e in facts.endorsements}

    with pytest.raises(CommitError) as err:
        victim.discriminator.submit("RecordDiscriminatorStep", run, json.dumps(disc), endorsing_orgs=others)
    assert err.value.name == "ENDORSEMENT_POLICY_FAILURE"
    forged = TxChecker(victim.generator.network).facts(err.value.tx_id)
    assert head_key in forged.writes and {e.msp_id for e in forged.endorsements} == set(others)
    # nothing of it reached the state: the victim still waits for its discriminator step
    assert json.loads(victim.generator.evaluate("GetStepHead", run, victim.msp))["phase"] == "g"
    assert json.loads(victim.generator.evaluate("GetStep", run, victim.msp, "0", "0"))["discriminator"] is None
    # the same write endorsed by the victim's peer (and one other, for MAJORITY) commits
    victim.discriminator.submit("RecordDiscriminatorStep", run, json.dumps(disc),
                                endorsing_orgs=[victim.msp, others[0]])
    assert json.loads(victim.generator.evaluate("GetStepHead", run, victim.msp))["phase"] == "d"

    # what key-level endorsement does NOT stop: creating a key that is not on the ledger
    # yet is validated against the chaincode policy (MAJORITY), which the two satisfy;
    # a fault "of Registry3" endorsed by the other two commits ...
    fault = {"round": 0, "iter": 0, "kind": "feedback_hash_mismatch", "expected": "d" * 64,
             "got": "f" * 64, "detail": "forged"}
    victim.discriminator.submit("RecordFault", run, json.dumps(fault), endorsing_orgs=others)
    # ... and the auditor names it: its transaction was not endorsed by Registry3's peer
    checked, failures = check_record_transactions(victim.generator, run, [c.msp for c in clients], 0, [0], 1)
    assert checked == 3  # the G and D step records of (0, 0) and the fault
    assert len(failures) == 1 and failures[0].startswith(f"{victim.msp} fault ")
    assert f"not endorsed by a peer of {victim.msp} (endorsers {', '.join(sorted(others))})" in failures[0]

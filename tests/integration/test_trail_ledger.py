"""The training audit trail on the real `gan` channel: recorded by each registry's
merger identity, verified by an auditor identity (CKKS keys made locally here;
the key ceremony itself is covered by test_keys_ledger.py and the demo).

A run's header needs an owner on the ledger (chaincode/README.md "Record keys"):
these runs open an aggregation first, whose first participant's merger writes it."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from synthreg.chain.secagg import AggregationConfig, LedgerAggregator, open_aggregation
from synthreg.crypto.ckks import create_audit_context, encrypt_vector
from synthreg.ledger import ChaincodeError, Contract, EndorseError
from synthreg.ledger.sync import submit_synced
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile
from synthreg.trail.record import TrailRecorder, round_key, run_key
from synthreg.trail.verify import verify_run
from synthreg.workspace import Workspace


def test_recorded_run_verifies_and_records_are_write_once(profile: Profile, unique: str, tmp_path: Path) -> None:
    keys = create_audit_context()
    msps = profile.msp_ids
    run_id = f"it-{unique}"
    workspaces = {m: Workspace(tmp_path / m) for m in msps}
    rng = np.random.default_rng(1)
    with ExitStack() as stack:
        contracts = {m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
                     for m in msps}
        open_aggregation(contracts[msps[0]], msps[0], run_id, AggregationConfig.default(msps, 1))
        rec = TrailRecorder(run_id, msps, contracts, workspaces, keys.public, {1})
        rec.record_run({"config": {"rounds": 2}, "schema_sha256": "0" * 64})
        for r in range(2):
            vecs = [rng.normal(size=3000).astype(np.float32) for _ in msps]
            rec.on_round(r, vecs, np.mean(np.stack(vecs), axis=0).astype(np.float32))
        # a record is immutable: the same registry cannot rewrite its round-0 entry
        with pytest.raises(EndorseError) as err:
            contracts[msps[0]].submit("PutRecord", round_key(run_id, 0, msps[0]), json.dumps({"forged": True}))
        assert "ALREADY_EXISTS" in str(err.value)
    assert len(set(rec.tx_ids)) == 1 + 2 * len(msps)

    with open_gateway(profile, msps[0], "auditor") as gw:
        report = verify_run(run_id, gw.network("gan").contract("ganledger"), keys.secret, keys.public, workspaces)
        assert report.ok, report.failures
        assert report.records_checked == 2 * len(msps) and report.audited_rounds == [1]
        assert report.max_abs_error < 1e-6

        # an auditor given a doctored snapshot finds it
        entry = next(e for e in rec.entries if e.round == 1 and e.msp_id == msps[1])
        path = workspaces[msps[1]]._path(entry.weights_sha256)
        doctored = np.frombuffer(path.read_bytes(), dtype="<f4").copy()
        doctored[0] += 1.0
        path.write_bytes(doctored.tobytes())
        report = verify_run(run_id, gw.network("gan").contract("ganledger"), keys.secret, keys.public, workspaces)
    assert not report.ok
    assert any(entry.weights_sha256 in f for f in report.failures)


def test_round_record_by_another_role_is_flagged(profile: Profile, unique: str, tmp_path: Path) -> None:
    """A round entry written by a registry's generator (not its merger) fails the audit."""
    keys = create_audit_context()
    msps = profile.msp_ids
    run_id = f"it-role-{unique}"
    workspaces = {m: Workspace(tmp_path / m) for m in msps}
    with ExitStack() as stack:
        roles = {m: ("generator" if m == msps[2] else "merger") for m in msps}
        contracts = {m: stack.enter_context(open_gateway(profile, m, roles[m])).network("gan").contract("ganledger")
                     for m in msps}
        open_aggregation(contracts[msps[0]], msps[0], run_id, AggregationConfig.default(msps, 1))
        rec = TrailRecorder(run_id, msps, contracts, workspaces, keys.public, set())
        rec.record_run({"config": {"rounds": 1}})
        vecs = [np.full(10, float(i), dtype=np.float32) for i in range(len(msps))]
        rec.on_round(0, vecs, np.mean(np.stack(vecs), axis=0))
    with open_gateway(profile, msps[0], "auditor") as gw:
        report = verify_run(run_id, gw.network("gan").contract("ganledger"), keys.secret, keys.public, workspaces)
    assert any(f"{msps[2]}: recorded by {msps[2]}/generator" in f for f in report.failures)


def _refused(contract: Contract, key: str, value: dict[str, object]) -> ChaincodeError:
    with pytest.raises(EndorseError) as err:
        contract.submit("PutRecord", key, json.dumps(value))
    assert isinstance(err.value, ChaincodeError), err.value
    return err.value


def test_attack_record_key_squatting(profile: Profile, unique: str, tmp_path: Path) -> None:
    """Issue 10 item 4: Registry1 wrote Registry3's round record before Registry3 did,
    so Registry3's merger failed ALREADY_EXISTS and its training aborted. Now a round
    record (and any key naming a registry) is written by that registry only."""
    keys = create_audit_context()
    msps = profile.msp_ids
    run_id = f"it-squat-{unique}"
    workspaces = {m: Workspace(tmp_path / m) for m in msps}
    with ExitStack() as stack:
        def app(msp: str, role: str) -> Contract:
            return stack.enter_context(open_gateway(profile, msp, role)).network("gan").contract("ganledger")

        contracts = {m: app(m, "merger") for m in msps}
        squatter = contracts[msps[0]]
        for contract in (squatter, app(msps[0], "generator")):
            err = _refused(contract, round_key(run_id, 0, msps[2]), {"round": 0, "msp": msps[2], "forged": True})
            assert err.chaincode.code == "ACCESS_DENIED" and f"only {msps[2]} may" in err.chaincode.detail
        err = _refused(squatter, f"notes/{msps[2]}/{unique}", {"v": 1})
        assert err.chaincode.code == "ACCESS_DENIED"
        err = _refused(squatter, f"run/{run_id}/round/01/{msps[2]}", {"v": 1})  # one spelling per round
        assert err.chaincode.code == "INVALID_ARGUMENT"
        # the victim still records its round: training goes on
        rec = TrailRecorder(run_id, msps, contracts, workspaces, keys.public, set())
        rec.on_round(0, [np.full(10, float(i), dtype=np.float32) for i in range(len(msps))],
                     np.full(10, 1.0, dtype=np.float32))
        # read on the victim's peer: its submit returned once that peer committed the record
        # (another org's peer may still be a block behind)
        got = json.loads(contracts[msps[2]].evaluate("GetRecord", round_key(run_id, 0, msps[2])))
    assert (got["msp"], got["role"], got["value"]["msp"]) == (msps[2], "merger", msps[2])


def test_attack_forged_run_header(profile: Profile, unique: str, tmp_path: Path) -> None:
    """Issue 10 item 3: Registry2's generator wrote a run's header first, naming one
    round and only itself, and the auditor reported ok with zero rounds, aggregations
    and steps checked. Now only the merger of the org that opened the run writes the
    header, never ahead of the run, and the auditor checks even that merger's header
    against the aggregation and its submissions."""
    keys = create_audit_context()
    msps = sorted(profile.msp_ids)
    run_id = f"it-header-{unique}"
    forged = {"config": {"rounds": 1}, "registries": [msps[1], msps[1]], "audit_rounds": [],
              "schema_sha256": "0" * 64}
    workspaces = {m: Workspace(tmp_path / m) for m in msps}
    with ExitStack() as stack:
        def app(msp: str, role: str) -> Contract:
            return stack.enter_context(open_gateway(profile, msp, role)).network("gan").contract("ganledger")

        contracts = {m: app(m, "merger") for m in msps}
        forger = app(msps[1], "generator")
        err = _refused(forger, run_key(run_id), forged)  # ahead of the run: nobody owns its header yet
        assert err.chaincode.code == "PRECONDITION_FAILED" and "no owner yet" in err.chaincode.detail

        # an aggregation run: its first participant's merger owns the header
        aggregate = LedgerAggregator(contracts, msps, run_id, audit_rounds={1},
                                     audit=lambda v: encrypt_vector(keys.public, v.astype(np.float64)).to_bytes())
        rec = TrailRecorder(run_id, msps, contracts, workspaces, keys.public, {1})
        rec.ciphertext_source = aggregate.audit_ciphertext
        rng = np.random.default_rng(7)
        for rnd in range(2):
            vectors = [rng.normal(size=500).astype(np.float32) for _ in msps]
            rec.on_round(rnd, vectors, aggregate(rnd, vectors, None))
        for contract in (forger, contracts[msps[1]], app(msps[0], "generator")):
            err = _refused(contract, run_key(run_id), forged)
            assert err.chaincode.code == "ACCESS_DENIED"
            assert f"only the merger of {msps[0]} (the first participant of aggregation" in err.chaincode.detail
        # the owner's merger may write it, but cannot make the auditor look away
        contracts[msps[0]].submit("PutRecord", run_key(run_id), json.dumps(forged))

        # a proposed run: the proposer's merger (here Registry2's, not the first participant's) owns it
        proposed = f"it-header-run-{unique}"
        spec = {"participants": msps, "schema_sha256": "0" * 64, "schema": "columns: []\n", "config": {},
                "threshold": 2, "rounds": 1, "local_iters": 1, "audit_rounds": [], "stop_rule": {"kind": "budget"},
                "ceremony_id": "none"}
        submit_synced(app(msps[1], "admin"), "ProposeRun", proposed, json.dumps(spec, sort_keys=True), orgs=msps)
        for contract in (forger, contracts[msps[0]]):
            err = _refused(contract, run_key(proposed), forged)
            assert err.chaincode.code == "ACCESS_DENIED"
            assert f"only the merger of {msps[1]} (the proposer of run" in err.chaincode.detail
        contracts[msps[1]].submit("PutRecord", run_key(proposed), json.dumps(forged))

    with open_gateway(profile, msps[0], "auditor") as gw:
        report = verify_run(run_id, gw.network("gan").contract("ganledger"), keys.secret, keys.public, workspaces)
    assert not report.ok
    assert f"run header registries {forged['registries']!r} differs from the expected {msps!r}" in report.failures
    assert any("averaging None, but the ledger holds secure-aggregation rounds" in f for f in report.failures)
    assert f"the header says 1 round(s), but round 1 was recorded by {', '.join(msps)}" in report.failures
    assert report.rounds_checked == 1 and report.secagg_rounds_checked == 1  # round 0, all registries, checked


def test_auditor_flags_records_their_transactions_do_not_vouch_for(profile: Profile, unique: str) -> None:
    """Issue 10 attack 5, the auditor's side: a record's msp/role stamp is written by
    the chaincode that endorsed it, so the auditor checks each record against its
    transaction (qscc): creator, write set, and an endorsement by the owner's peer."""
    from synthreg.trail.txcheck import RecordRef, TxChecker, check_record_transactions, record_state_key

    msps = profile.msp_ids
    run_id = f"it-tx-{unique}"
    victim = msps[2]
    with ExitStack() as stack:
        def merger(msp: str) -> Contract:
            return stack.enter_context(open_gateway(profile, msp, "merger")).network("gan").contract("ganledger")

        mergers = {m: merger(m) for m in msps}
        for m in msps:
            submit_synced(mergers[m], "PutRecord", round_key(run_id, 0, m), json.dumps({"round": 0}), orgs=msps)
        # creating a key is validated against the chaincode policy only: Registry3's
        # round-1 record endorsed by the other two registries' peers commits
        mergers[victim].submit("PutRecord", round_key(run_id, 1, victim), json.dumps({"round": 1}),
                               endorsing_orgs=msps[:2])
        auditor = stack.enter_context(open_gateway(profile, msps[0], "auditor")).network("gan")
        checker = TxChecker(auditor)
        ganledger = auditor.contract("ganledger")

        honest = json.loads(ganledger.evaluate("GetRecord", round_key(run_id, 0, victim)))
        ref = RecordRef("round 0", honest["txid"], record_state_key(round_key(run_id, 0, victim)),
                        victim, "merger", victim)
        assert checker.check(ref) == []
        # a record stamped Registry3 whose transaction Registry1 created (what modified
        # chaincode would store): creator and write set give it away
        other = json.loads(ganledger.evaluate("GetRecord", round_key(run_id, 0, msps[0])))
        failures = checker.check(RecordRef("round 0", other["txid"], ref.state_key, victim, "merger", victim))
        assert any(f"stamped {victim}/merger, but transaction {other['txid']} was created by {msps[0]}/merger" in f
                   for f in failures)
        assert any("does not write the record's key" in f for f in failures)

        forged = json.loads(ganledger.evaluate("GetRecord", round_key(run_id, 1, victim)))
        checked, failures = check_record_transactions(ganledger, run_id, msps, 2)
    assert checked == 4  # no header; three round-0 records and Registry3's round-1 record
    assert failures == [f"round 1 {victim}: transaction {forged['txid']} was not endorsed by a peer of {victim} "
                        f"(endorsers {', '.join(msps[:2])})"]

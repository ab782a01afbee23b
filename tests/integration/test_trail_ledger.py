"""The training audit trail on the real `gan` channel: recorded by each registry's
merger identity, verified by an auditor identity (CKKS keys made locally here;
the key ceremony itself is covered by test_keys_ledger.py and the demo)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from synthreg.crypto.ckks import create_audit_context
from synthreg.ledger import EndorseError
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile
from synthreg.trail.record import TrailRecorder, round_key
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
        rec = TrailRecorder(run_id, msps, contracts, workspaces, keys.public, set())
        rec.record_run({"config": {"rounds": 1}})
        vecs = [np.full(10, float(i), dtype=np.float32) for i in range(len(msps))]
        rec.on_round(0, vecs, np.mean(np.stack(vecs), axis=0))
    with open_gateway(profile, msps[0], "auditor") as gw:
        report = verify_run(run_id, gw.network("gan").contract("ganledger"), keys.secret, keys.public, workspaces)
    assert any(f"{msps[2]}: recorded by {msps[2]}/generator" in f for f in report.failures)

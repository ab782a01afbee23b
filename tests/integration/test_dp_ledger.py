"""Differential privacy with its budget on the REAL local network (issue 12).

A DP run through the 9 app processes whose budget allows 2 of its 4 rounds: every
registry stops after round 1 (its discriminator refused no step: the run's rounds
are capped by the budget, computed alike by every app from the agreed config), each
discriminator recorded its spend per round, and the auditor's full verification
recomputes every epsilon and passes. Then a registry's own discriminator identity
records an under-reported epsilon for a real step: the chaincode cannot run the
accountant and accepts it; the auditor names it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from apps_support import CONFIG, make_consortium

from synthreg.gan.accountant import ACCOUNTANT
from synthreg.gan.federated import TrainConfig
from synthreg.ledger import EvaluateError
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile
from synthreg.trail.verify import check_privacy

SIGMA, RATE, DELTA, ITERS = 1.0, 0.2, 1e-3, 2
BASE = TrainConfig.from_dict({**CONFIG, "pac": 1, "rounds": 4, "local_iters": ITERS, "dp_epsilon": 1e3,
                              "dp_delta": DELTA, "dp_noise_multiplier": SIGMA, "dp_sample_rate": RATE})
BUDGET = BASE.epsilon_after(2 * ITERS) * (1 + 1e-6)  # two rounds fit, the third would exceed it


def test_a_small_budget_stops_every_registry_and_the_auditor_checks_every_spend(
        profile: Profile, tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    c = make_consortium(profile, tmp_path / "c")
    training = {**CONFIG, "pac": 1, "rounds": 4, "local_iters": ITERS, "dp_epsilon": BUDGET, "dp_delta": DELTA,
                "dp_noise_multiplier": SIGMA, "dp_sample_rate": RATE}
    run = f"dp-{uuid.uuid4().hex[:10]}"
    states = {m: tmp_path / m for m in c.profile.msp_ids}
    spec = c.run_through_apps(run, states, training=training)
    assert (spec.config.rounds, spec.rounds) == (4, 2)
    cfg = spec.config
    with open_gateway(c.profile, "Registry1MSP", "auditor") as gw:
        cc = gw.network("gan").contract("ganledger")
        for m in c.profile.msp_ids:
            assert json.loads(cc.evaluate("GetStepHead", run, m)) == {"round": 1, "iter": ITERS - 1,
                                                                      "phase": "stopped"}
            spends = [json.loads(cc.evaluate("GetPrivacySpend", run, m, str(r))) for r in range(2)]
            assert [(s["steps"], s["role"]) for s in spends] == [(ITERS, "discriminator"),
                                                                 (2 * ITERS, "discriminator")]
            assert spends[1]["epsilon"] == pytest.approx(cfg.epsilon_after(2 * ITERS))
            assert spends[1]["epsilon"] <= BUDGET < cfg.epsilon_after(3 * ITERS)
            with pytest.raises(EvaluateError):
                cc.evaluate("GetPrivacySpend", run, m, "2")
            with pytest.raises(EvaluateError):
                cc.evaluate("GetStep", run, m, "2", "0")
    report = c.audit(run, {m: states[m] for m in c.profile.msp_ids}, tmp_path / "auditor" / "key")
    assert report.ok, report.failures
    assert report.epsilon == {m: pytest.approx(cfg.epsilon_after(2 * ITERS)) for m in c.profile.msp_ids}


def test_the_auditor_flags_a_tampered_epsilon_record(profile: Profile) -> None:
    run, msp = f"dp-tamper-{uuid.uuid4().hex[:10]}", "Registry1MSP"
    h = "ab" * 32
    with (open_gateway(profile, msp, "generator") as g_gw, open_gateway(profile, msp, "discriminator") as d_gw,
          open_gateway(profile, msp, "auditor") as a_gw):
        gen = g_gw.network("gan").contract("ganledger")
        dis = d_gw.network("gan").contract("ganledger")
        gen.submit("RecordGeneratorStep", run, json.dumps({"round": 0, "iter": 0, "fake_sha256": h,
                                                           "g_weights_sha256": h, "noise_seed": 1, "batch_size": 20}))
        dis.submit("RecordDiscriminatorStep", run, json.dumps({
            "round": 0, "iter": 0, "fake_sha256": h, "real_sha256": h, "feedback_sha256": h, "d_weights_sha256": h,
            "d_loss": 0.0, "g_loss": 0.0}))
        cfg = replace(BASE, local_iters=1)
        honest = cfg.epsilon_after(1)
        dis.submit("RecordPrivacySpend", run, json.dumps({
            "round": 0, "iter": 0, "steps": 1, "epsilon": honest / 2, "delta": DELTA, "noise_multiplier": SIGMA,
            "sample_rate": RATE, "max_grad_norm": 1.0, "accountant": ACCOUNTANT}))
        spent, failures = check_privacy(a_gw.network("gan").contract("ganledger"), run, cfg, [msp], 1)
    assert spent == {msp: pytest.approx(honest)}
    assert len(failures) == 1 and "recorded epsilon" in failures[0] and "tampered" in failures[0], failures

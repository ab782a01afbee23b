"""Local critics and a conditional generator on the REAL local network (issue 12, part 1):
a run whose config says ``averaged: generator`` and ``condition_on: size`` through the 9 app
processes. Only the generators go through secure aggregation (the audit copies and the
bundles hold G alone); every discriminator keeps its own weights; each registry's generator
draws its conditions at the level counts its merger put in its state folder (the agreed
statistics hold their sum); the final generator is bit for bit the one the single-process
ledger path trains with the same config, and the auditor's full verification (audit copies
decrypted and checked against the update bound) passes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
from apps_support import CONFIG, make_consortium

from synthreg.data.schema import load_registry_csv
from synthreg.gan.bundle import load_bundle
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile
from synthreg.trail.record import RoundEntry, round_key


def test_only_generators_are_averaged_and_the_run_matches_in_process(profile: Profile, tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    c = make_consortium(profile, tmp_path / "c")
    run = f"gonly-{uuid.uuid4().hex[:10]}"
    states = {m: tmp_path / m for m in c.profile.msp_ids}
    spec = c.run_through_apps(run, states, training={**CONFIG, "averaged": "generator", "lr_d": 1e-3,
                                                     "condition_on": "size"})
    assert spec.config.generator_only and spec.config.condition_on == "size"
    levels = ["<=20", "20-50", ">50"]
    summed = np.zeros(3)
    for m in c.profile.msp_ids:  # each generator's conditions: its own registry's counts, never on the ledger
        local = json.loads((states[m] / "runs" / run / "condition-counts.json").read_text())
        own = load_registry_csv(c.data[m], spec.schema())["size"]
        assert local == {"column": "size", "counts": [float((own == lv).sum()) for lv in levels]}
        summed += local["counts"]

    bundles = [load_bundle(states[m] / "bundles" / run) for m in c.profile.msp_ids]
    assert all(b.discriminator_vector.size == 0 for b in bundles)  # no registry's critic leaves it
    assert bundles[0].encoder.level_counts("size") == tuple(summed)  # the agreed sum samples the column
    assert len({b.average_sha256 for b in bundles}) == 1
    n_g = bundles[0].generator_vector().size
    with open_gateway(c.profile, "Registry1MSP", "auditor") as gw:
        cc = gw.network("gan").contract("ganledger")
        for m in c.profile.msp_ids:  # every aggregated update is the generator's length
            for rnd in range(spec.rounds):
                entry = RoundEntry.from_json(json.loads(cc.evaluate("GetRecord", round_key(run, rnd, m)))["value"])
                assert entry.n_params == n_g, entry
    # the same config through the single-process ledger path (secure aggregation, every app identity)
    assert np.array_equal(bundles[0].generator_vector(), c.reference_generator(spec, f"{run}-single"))
    report = c.audit(run, states, tmp_path / "auditor" / "key")
    assert report.ok, report.failures

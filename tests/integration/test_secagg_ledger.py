"""Secure aggregation over the real `gan` channel (DESIGN.md §4).

Each registry's merger uses its own identity and Gateway and holds only its own
round secrets; everything they exchange goes through the ganledger chaincode.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack

import numpy as np
import pytest
from secagg_support import opened_aggregation

from synthreg.chain.secagg import (
    AggregationLedgerError,
    LedgerMerger,
    RoundClosedError,
    left_out_of,
    secure_average,
)
from synthreg.network.client import open_gateway
from synthreg.network.profile import Profile

VECTOR_LEN = 5000


@pytest.fixture
def mergers(profile: Profile, unique: str) -> Iterator[list[LedgerMerger]]:
    run = f"sa-{unique}"
    with opened_aggregation(profile, run, VECTOR_LEN) as (contracts, config):
        yield [LedgerMerger(contracts[m], m, run, config) for m in sorted(contracts)]


def _vectors(msps: list[str], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.normal(scale=0.5, size=VECTOR_LEN).astype(np.float32) for m in msps}


def test_all_mergers_agree_on_the_weighted_average_and_only_masked_vectors_are_on_chain(
        mergers: list[LedgerMerger]) -> None:
    msps = [m.msp for m in mergers]
    vectors = _vectors(msps, 1)
    weights = {m: float(w) for m, w in zip(msps, (900, 1100, 982), strict=True)}
    out = secure_average(mergers, 0, vectors, weights)

    expected = sum(weights[m] * vectors[m].astype(np.float64) for m in msps) / sum(weights.values())
    assert out.survivors == msps or sorted(out.survivors) == msps
    assert out.dropped == []
    assert np.max(np.abs(out.average - expected)) < 1e-6

    state = mergers[0].state(0)
    assert state["status"] == "frozen" and state["agreed"] is True
    assert set(state["results"]) == set(msps) and len(set(state["results"].values())) == 1
    # what is on the ledger for a registry is its masked vector, which is nowhere near its weights
    sub = state["submissions"][msps[0]]
    masked = np.frombuffer(mergers[1].blob(sub["masked_sha256"], 0, msps[0]), dtype="<u8")
    as_fixed = np.round(vectors[msps[0]].astype(np.float64) * weights[msps[0]] * 2.0**32).astype(np.int64)
    assert np.mean(masked.view(np.int64) == as_fixed) < 0.01
    assert 0.45 < np.mean(masked >> np.uint64(63)) < 0.55  # top bit looks uniform


def test_a_blob_is_in_its_block_once_never_also_as_an_argument(mergers: list[LedgerMerger]) -> None:
    """PutBlob's bytes travel in the transient map, which the peer strips from the
    transaction: the committed block holds them once (the write set), and not their
    base64 text (what an argument would add, 1.33x the bytes)."""
    msps = [m.msp for m in mergers]
    secure_average(mergers, 0, _vectors(msps, 2))
    sub = mergers[0].state(0)["submissions"][msps[0]]
    data = mergers[0].blob(sub["masked_sha256"], 0, msps[0])
    qscc = mergers[0].contract.network.contract("qscc")
    blocks = {bytes(qscc.evaluate("GetBlockByTxID", mergers[0].contract.network.name, tx))
              for tx in mergers[0].tx_ids}
    holding = [b for b in blocks if data in b]
    assert len(holding) == 1 and holding[0].count(data) == 1
    assert base64.b64encode(data)[:64] not in holding[0]


def test_dropout_after_sharing_is_recovered_and_a_late_submission_is_refused(
        mergers: list[LedgerMerger]) -> None:
    msps = [m.msp for m in mergers]
    vectors = _vectors(msps, 2)
    gone = msps[1]
    out = secure_average(mergers, 0, vectors, drop_before_submit=[gone])

    survivors = [m for m in msps if m != gone]
    expected = np.mean([vectors[m].astype(np.float64) for m in survivors], axis=0)
    assert sorted(out.survivors) == survivors and out.dropped == [gone]
    assert np.max(np.abs(out.average - expected)) < 1e-6
    state = mergers[0].state(0)
    # the dropped registry's round key was reconstructed from shares, its self seed never revealed
    for rev in state["reveals"].values():
        assert gone in rev["key_shares"] and gone not in rev["seed_shares"]

    # the registry comes back after the freeze: its submission is refused, nothing is written
    late = next(m for m in mergers if m.msp == gone)
    with pytest.raises(RoundClosedError) as err:
        late._submit("Submit", late.run, "0", json.dumps(
            {"masked_sha256": state["submissions"][msps[0]]["masked_sha256"], "audit_sha256": "",
             "peers": survivors}))
    assert err.value.code == "PRECONDITION_FAILED"
    assert gone not in mergers[0].state(0)["submissions"]


def test_a_round_below_threshold_is_void(mergers: list[LedgerMerger]) -> None:
    msps = [m.msp for m in mergers]
    with pytest.raises(Exception) as err:
        secure_average(mergers, 0, _vectors(msps, 3), drop_before_submit=msps[1:])
    assert "void" in str(err.value)
    assert mergers[0].state(0)["status"] == "void"


def test_non_merger_role_cannot_take_part(profile: Profile, mergers: list[LedgerMerger]) -> None:
    msp = mergers[0].msp
    with open_gateway(profile, msp, "generator") as gw:
        intruder = LedgerMerger(gw.network("gan").contract("ganledger"), msp, mergers[0].run, mergers[0].config)
        with pytest.raises(AggregationLedgerError) as err:
            intruder.advertise(0)
    assert err.value.code == "ACCESS_DENIED"


def test_auditor_checks_the_recorded_average_against_the_secure_aggregation_round(
        profile: Profile, unique: str, tmp_path) -> None:
    from synthreg.chain.secagg import LedgerAggregator
    from synthreg.crypto.ckks import create_audit_context, encrypt_vector
    from synthreg.trail.record import TrailRecorder
    from synthreg.trail.verify import verify_run
    from synthreg.workspace import Workspace

    keys = create_audit_context()
    msps = sorted(profile.msp_ids)
    rng = np.random.default_rng(4)
    with ExitStack() as stack:
        contracts = {m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
                     for m in msps}
        reports = {}
        for label in ("honest", "doctored", "own-ciphertext"):
            run = f"sa-trail-{label}-{unique}"
            workspaces = {m: Workspace(tmp_path / label / m) for m in msps}
            recorder = TrailRecorder(run, msps, contracts, workspaces, keys.public, {1})
            aggregate = LedgerAggregator(contracts, msps, run, audit_rounds={1},
                                         audit=lambda v: encrypt_vector(keys.public, v.astype(np.float64)).to_bytes())
            if label != "own-ciphertext":  # else the recorder encrypts anew: other bytes than were submitted
                recorder.ciphertext_source = aggregate.audit_ciphertext
            for rnd in range(2):
                vectors = [rng.normal(size=2000).astype(np.float32) for _ in msps]
                average = aggregate(rnd, vectors, None)
                if label == "doctored" and rnd == 1:
                    average = average.copy()
                    average[0] += np.float32(1e-7)  # within the plaintext tolerance, but not what was agreed
                recorder.on_round(rnd, vectors, average)
            assert len(aggregate.outcomes) == 2
            # the header once the aggregation is open (its first participant's merger owns it)
            recorder.record_run({"config": {"rounds": 2}, "schema_sha256": "0" * 64,
                                 "averaging": "secagg-ledger-uniform"})
            with open_gateway(profile, msps[0], "auditor") as gw:
                reports[label] = verify_run(run, gw.network("gan").contract("ganledger"), keys.secret, keys.public,
                                            workspaces)
    assert reports["honest"].ok, reports["honest"].failures
    assert reports["honest"].secagg_rounds_checked == 2
    assert not reports["doctored"].ok
    assert reports["honest"].audited_rounds == [1]
    assert reports["doctored"].failures == [
        "round 1: the average agreed by secure aggregation is not the recorded average"]
    own = reports["own-ciphertext"]
    assert len(own.failures) == len(msps) and all(
        "audit ciphertext submitted with secure aggregation" in f for f in own.failures), own.failures


def test_the_encoder_built_from_a_secure_sum_of_histograms_is_the_agreed_one(
        profile: Profile, unique: str) -> None:
    from synthreg.chain.secagg import secure_sum
    from synthreg.data import Schema, load_dataset, split_registries
    from synthreg.gan.federated import TrainConfig, build_encoder

    schema = Schema.bundled("rotterdam")
    frames = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    msps = list(profile.msp_ids)
    with ExitStack() as stack:
        contracts = {m: stack.enter_context(open_gateway(profile, m, "merger")).network("gan").contract("ganledger")
                     for m in msps}
        enc = build_encoder(frames, schema, TrainConfig(), secure_sum=lambda vecs: secure_sum(
            contracts, msps, f"enc-{unique}", vecs))
        state = json.loads(contracts[msps[0]].evaluate("GetRound", f"enc-{unique}", "0"))
    assert enc.hash() == build_encoder(frames, schema, TrainConfig()).hash()
    assert state["status"] == "frozen" and state["agreed"] is True and sorted(state["survivors"]) == sorted(msps)


def test_a_merger_that_never_advertises_is_voted_out_and_takes_the_average_from_the_ledger(
        mergers: list[LedgerMerger]) -> None:
    """t of n in the advertise phase: no one may share before everyone advertised or t
    voted; after t votes the late merger is refused and computes the agreed average
    from the ledger alone (what a registry back from an outage does)."""
    m1, m2, late = mergers
    vectors = _vectors([m.msp for m in mergers], 4)
    for m in (m1, m2):
        m.advertise(0)
    m2.wait_for(0, lambda s: len(s["advertised"]) == 2, "two advertisements")
    with pytest.raises(RoundClosedError, match=r"advertise phase .* is open"):
        m1.post_shares(0)
    for m in (m1, m2):
        assert m.vote(0, "advertise")
    m2.wait_for(0, lambda s: len(s["votes"]["advertise"]) == 2, "two votes")
    with pytest.raises(RoundClosedError, match="voted to close"):
        late.advertise(0)
    assert left_out_of(late.state(0), late.msp, 2)
    for m in (m1, m2):
        m.post_shares(0)
    for m in (m1, m2):
        m.wait_for(0, lambda s: len(s["shares"]) == 2, "both shares")
        m.submit(0, vectors[m.msp])
    assert m1.freeze(0)
    for m in (m1, m2):
        m.wait_for(0, lambda s: s["status"] == "frozen", "the freeze")
        m.reveal(0)
    for m in (m1, m2):
        m.wait_for(0, lambda s: len(s["reveals"]) == 2, "both reveals")
    outs = [m.result(0) for m in (m1, m2)]
    late.wait_for(0, lambda s: s["agreed"] is True, "the agreement")
    seen = late.observe(0)
    assert seen.average_sha256 == outs[0].average_sha256 == outs[1].average_sha256
    expected = np.mean([vectors[m.msp].astype(np.float64) for m in (m1, m2)], axis=0)
    assert np.max(np.abs(seen.average - expected)) < 1e-6


def test_a_survivor_that_never_reveals_does_not_hold_the_round_up(mergers: list[LedgerMerger]) -> None:
    """All three submit; the third crashes before revealing (its secrets are gone):
    any t = 2 reveals unmask the sum, t equal results are the agreement, and the
    silent survivor's update is still in the average."""
    vectors = _vectors([m.msp for m in mergers], 5)
    for m in mergers:
        m.advertise(0)
    for m in mergers:
        m.wait_for(0, lambda s: len(s["advertised"]) == 3, "every advertisement")
        m.post_shares(0)
    for m in mergers:
        m.wait_for(0, lambda s: len(s["shares"]) == 3, "every share")
        m.submit(0, vectors[m.msp])
    assert mergers[0].freeze(0)
    silent = mergers[2]
    silent.forget(0)  # killed after submitting: its round secrets are gone
    for m in mergers[:2]:
        m.wait_for(0, lambda s: s["status"] == "frozen", "the freeze")
        m.reveal(0)
    for m in mergers[:2]:
        m.wait_for(0, lambda s: len(s["reveals"]) == 2, "two reveals")
    outs = [m.result(0) for m in mergers[:2]]
    state = mergers[0].wait_for(0, lambda s: s["agreed"] is not None, "the agreement")
    assert state["agreed"] is True and state["average_sha256"] == outs[0].average_sha256
    assert sorted(state["survivors"]) == sorted(m.msp for m in mergers) and silent.msp not in state["reveals"]
    expected = np.mean([v.astype(np.float64) for v in vectors.values()], axis=0)
    assert np.max(np.abs(outs[0].average - expected)) < 1e-6
    assert silent.observe(0).average_sha256 == outs[0].average_sha256

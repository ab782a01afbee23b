"""In-process federation end to end (tiny budget), reproducibility, baselines, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from synthreg.data import Schema, load_dataset, sha256_hex, split_registries, validate
from synthreg.data.schema import MissingValueError
from synthreg.gan.bound import UpdateBoundError
from synthreg.gan.federated import (
    FederatedResult,
    TrainConfig,
    TrainConfigError,
    train_centralised,
    train_federated,
)
from synthreg.gan.models import build_models
from synthreg.gan.weights import state_dict_to_vector

TINY = TrainConfig(rounds=2, local_iters=3, batch_size=20, noise_dim=8, gen_dims=(16, 16),
                   dis_dims=(16,), pac=5, seed=5)


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.bundled("rotterdam")


@pytest.fixture(scope="module")
def frames() -> list[pd.DataFrame]:
    # a small slice keeps the test fast; the split is the real non-IID one
    parts = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    return [p.head(120) for p in parts]


@pytest.fixture(scope="module")
def tiny_run(frames: list[pd.DataFrame], schema: Schema) -> FederatedResult:
    return train_federated(frames, schema, TINY, progress=False)


def test_tiny_federated_run_end_to_end(tiny_run: FederatedResult, schema: Schema) -> None:
    res = tiny_run
    assert res.registry_sizes == [120, 120, 120]
    assert [(h.round, h.registry) for h in res.history] == [
        (r, i) for r in range(2) for i in range(3)
    ]
    assert all(np.isfinite(h.d_loss) and np.isfinite(h.g_loss) for h in res.history)
    assert res.wall_seconds > 0
    synth = res.sample(50, seed=1)
    assert list(synth.columns) == schema.column_names
    pd.testing.assert_frame_equal(validate(synth, schema), synth)  # in the schema, dtypes too
    assert res.history_records()[0].keys() == {"round", "registry", "d_loss", "g_loss"}


def test_seeded_runs_reproduce_bit_for_bit(tiny_run: FederatedResult,
                                           frames: list[pd.DataFrame], schema: Schema) -> None:
    a = tiny_run
    b = train_federated(frames, schema, TINY, progress=False)
    np.testing.assert_array_equal(a.generator_vector(), b.generator_vector())
    assert a.history == b.history
    assert sha256_hex(a.sample(40, 3)) == sha256_hex(b.sample(40, 3))
    assert sha256_hex(a.sample(40, 3)) != sha256_hex(a.sample(40, 4))
    one_step = replace(TINY, rounds=1, local_iters=1)
    c5 = train_federated(frames, schema, one_step, progress=False)
    c6 = train_federated(frames, schema, replace(one_step, seed=6), progress=False)
    assert not np.array_equal(c5.generator_vector(), c6.generator_vector())


def test_training_moves_weights(tiny_run: FederatedResult) -> None:
    res = tiny_run
    init, _ = build_models(res.encoder.output_dim, TINY.model_config(), TINY.seed)
    assert not np.array_equal(state_dict_to_vector(init), res.generator_vector())


def test_centralised_and_local_only_paths(frames: list[pd.DataFrame], schema: Schema) -> None:
    pooled = pd.concat(frames, ignore_index=True)
    cheap = replace(TINY, rounds=1, local_iters=1)
    central = train_centralised(pooled, schema, cheap, progress=False, iters_multiplier=3)
    assert central.registry_sizes == [360]
    assert central.config.local_iters == 3
    assert len(central.history) == 1
    local = train_federated(frames[:1], schema, cheap, progress=False)
    assert local.registry_sizes == [120]
    # the local-only encoder only knows its own registry's histogram
    assert local.encoder.hash() != central.encoder.hash()


def test_bad_registry_data_is_refused(frames: list[pd.DataFrame], schema: Schema) -> None:
    broken = frames[1].copy()
    broken["age"] = broken["age"].astype(float)
    broken.loc[7, "age"] = np.nan
    with pytest.raises(MissingValueError) as info:
        train_federated([frames[0], broken], schema, TINY, progress=False)
    assert (info.value.row, info.value.column) == (7, "age")


def test_config_errors() -> None:
    with pytest.raises(TrainConfigError):
        TrainConfig(batch_size=21, pac=5)
    with pytest.raises(TrainConfigError):
        TrainConfig(rounds=0)
    with pytest.raises(TrainConfigError):
        train_federated([], Schema.bundled("rotterdam"), TINY, progress=False)


@pytest.mark.slow
def test_cli_writes_artifacts(tmp_path: Path) -> None:
    from synthreg.cli.main import app

    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, [
            "train-local", "--rounds", "1", "--local-iters", "2", "--batch-size", "50",
            "--samples", "30", "--out", str(tmp_path), "--json", "--threads", "1",
        ])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["registry_sizes"] == [583, 974, 1425]
    assert len(pd.read_csv(tmp_path / "synthetic.csv")) == 30
    npz = np.load(tmp_path / "generator.npz", allow_pickle=False)
    assert npz["vector"].dtype == np.float32
    assert sha256_hex(npz["vector"]) == summary["generator_sha256"]
    assert len(json.loads((tmp_path / "history.json").read_text())["history"]) == 3


def test_cli_readable_error(tmp_path: Path) -> None:
    from synthreg.cli.main import app

    result = CliRunner().invoke(app, ["train-local", "--dataset", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown dataset" in result.output


def test_an_injected_aggregator_replaces_fedavg(frames: list[pd.DataFrame], schema: Schema) -> None:
    from synthreg.gan.federated import fedavg

    calls: list[tuple[int, int, object]] = []

    def plain(rnd: int, vectors: list[np.ndarray], weights: list[float] | None) -> np.ndarray:
        calls.append((rnd, len(vectors), weights))
        return fedavg(vectors, weights)

    # (compared with a run made here: torch's global thread count, which other
    # tests change, moves float results in the last bits)
    base = train_federated(frames, schema, TINY, progress=False)
    same = train_federated(frames, schema, TINY, progress=False, aggregate=plain)
    assert calls == [(0, 3, None), (1, 3, None)]
    assert np.array_equal(same.generator_vector(), base.generator_vector())

    def offset(rnd: int, vectors: list[np.ndarray], weights: list[float] | None) -> np.ndarray:
        return fedavg(vectors, weights) + np.float32(1.0)

    one_unbounded = replace(TINY, rounds=1, max_update_norm=None)
    shifted = train_federated(frames, schema, one_unbounded, progress=False, aggregate=offset)
    plain_one = train_federated(frames, schema, one_unbounded, progress=False)
    assert np.allclose(shifted.generator_vector(), plain_one.generator_vector() + 1.0, atol=1e-6)
    # with the (default) update bound, an average moved by sqrt(#weights) is refused
    with pytest.raises(UpdateBoundError, match="round 0: the agreed average moved"):
        train_federated(frames, schema, replace(TINY, rounds=1), progress=False, aggregate=offset)

    with pytest.raises(TrainConfigError, match="aggregate returned shape"):
        train_federated(frames, schema, replace(TINY, rounds=1), progress=False,
                        aggregate=lambda r, v, w: np.zeros(3, dtype=np.float32))


def test_update_bound_on_the_single_process_path(tiny_run: FederatedResult,
                                                 frames: list[pd.DataFrame], schema: Schema) -> None:
    """Issue 10, attack 2: the reference path clips every registry's update as the merger
    apps do. The default bound leaves honest runs untouched (bit for bit); a tight one
    clips every update to it, and the average stays within it."""
    # (compared with a run made here: torch's global thread count, which other
    # tests change, moves float results in the last bits)
    base = train_federated(frames, schema, TINY, progress=False)
    unbounded = train_federated(frames, schema, replace(TINY, max_update_norm=None), progress=False)
    np.testing.assert_array_equal(unbounded.generator_vector(), base.generator_vector())

    from synthreg.gan.bound import update_norm

    init, dis = build_models(tiny_run.encoder.output_dim, TINY.model_config(), TINY.seed)
    prev = [np.concatenate([state_dict_to_vector(init), state_dict_to_vector(dis)])]
    norms: list[tuple[list[float], float]] = []

    def on_round(rnd: int, vectors: list[np.ndarray], average: np.ndarray) -> None:
        norms.append(([update_norm(v, prev[0]) for v in vectors], update_norm(average, prev[0])))
        prev[0] = average

    tight = train_federated(frames, schema, replace(TINY, max_update_norm=0.005), progress=False,
                            on_round=on_round)
    assert len(norms) == 2
    for per_registry, avg_norm in norms:
        assert per_registry == pytest.approx([0.005] * 3, rel=1e-4)  # honest deltas are ~0.02: all clipped
        assert avg_norm <= 0.005 * (1 + 1e-4)
    assert not np.array_equal(tight.generator_vector(), base.generator_vector())


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_max_update_norm_must_be_positive_finite_or_null(bad: object) -> None:
    with pytest.raises(TrainConfigError, match="max_update_norm"):
        TrainConfig(max_update_norm=bad)  # type: ignore[arg-type]
    assert TrainConfig(max_update_norm=None).max_update_norm is None
    assert TrainConfig.from_dict({"max_update_norm": 2}).max_update_norm == 2.0


def test_generator_only_averaging_keeps_every_critic_local() -> None:
    """``averaged="generator"``: the average is G's alone and loaded into every G;
    every registry's discriminator keeps its own weights (the default averages both)."""
    from types import SimpleNamespace

    from synthreg.gan.federated import _average_into, _Registry

    def registries() -> list[_Registry]:
        out = []
        for r in range(2):
            gen, dis = build_models(12, TINY.model_config(), seed=r)
            out.append(_Registry(r, 10, SimpleNamespace(generator=gen),  # type: ignore[arg-type]
                                 SimpleNamespace(discriminator=dis), None))  # type: ignore[arg-type]
        return out

    regs = registries()
    d_before = [state_dict_to_vector(r.d.discriminator) for r in regs]
    g_before = [state_dict_to_vector(r.g.generator) for r in regs]
    vectors, avg = _average_into(regs, None, generator_only=True)
    assert [v.size for v in vectors] == [g_before[0].size] * 2 and avg.size == g_before[0].size
    assert np.allclose(avg, (g_before[0].astype(np.float64) + g_before[1]) / 2, atol=1e-7)
    for reg, d in zip(regs, d_before, strict=True):
        assert np.array_equal(state_dict_to_vector(reg.g.generator), avg)
        assert np.array_equal(state_dict_to_vector(reg.d.discriminator), d)  # untouched
    regs = registries()
    _, avg = _average_into(regs, None)
    assert avg.size == g_before[0].size + d_before[0].size
    assert np.array_equal(state_dict_to_vector(regs[0].d.discriminator), state_dict_to_vector(regs[1].d.discriminator))


def test_generator_only_run_shares_g_alone(frames: list[pd.DataFrame], schema: Schema, tmp_path: Path) -> None:
    from synthreg.gan.bundle import load_bundle, write_bundle
    from synthreg.gan.federated import fedavg

    seen: list[int] = []

    def plain(rnd: int, vectors: list[np.ndarray], weights: list[float] | None) -> np.ndarray:
        seen.extend(v.size for v in vectors)
        return fedavg(vectors, weights)

    cfg = replace(TINY, averaged="generator")
    res = train_federated(frames, schema, cfg, progress=False, aggregate=plain)
    n_g = res.generator_vector().size
    assert seen == [n_g] * 6
    assert np.array_equal(res.average_vector(), res.generator_vector())
    # the bundle shares no critic; its identity is the hash of the averaged G
    write_bundle(tmp_path / "b", generator=res.generator(), discriminator_vector=res.average_vector()[n_g:],
                 encoder=res.encoder, schema=schema, config=cfg, run_id="r", aggregation_run="r", round=1,
                 average_sha256=sha256_hex(res.average_vector()))
    bundle = load_bundle(tmp_path / "b")
    assert bundle.discriminator_vector.size == 0
    assert bundle.average_sha256_computed() == sha256_hex(res.average_vector())
    assert cfg.to_dict()["averaged"] == "generator" and "averaged" not in TINY.to_dict()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(TrainConfigError, match="unknown averaged"):
        replace(TINY, averaged="discriminator")  # type: ignore[arg-type]

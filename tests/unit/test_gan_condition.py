"""Conditional generator on the column registries differ by (issue 12, part 1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from synthreg.chain.runs import RunSpec, RunSpecError
from synthreg.data import load_dataset, split_registries
from synthreg.data.schema import Schema, validate
from synthreg.gan.bundle import load_bundle, write_bundle
from synthreg.gan.condition import Condition, ConditionalSampler, ConditionError
from synthreg.gan.encoder import EncoderStats, TabularEncoder
from synthreg.gan.federated import FederatedResult, TrainConfig, TrainConfigError, build_encoder, train_federated
from synthreg.gan.models import build_models
from synthreg.gan.step import GeneratorSide
from synthreg.workspace import sha256_hex

TINY = TrainConfig(rounds=2, local_iters=3, batch_size=20, noise_dim=8, gen_dims=(16, 16), dis_dims=(16,),
                   pac=10, seed=3, averaged="generator", condition_on="differ")


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.bundled("colon")


@pytest.fixture(scope="module")
def frames(schema: Schema) -> list[pd.DataFrame]:
    """colon split by tumour differentiation: each registry holds its own levels of ``differ`` alone."""
    data = validate(load_dataset("colon").head(900).reset_index(drop=True), schema)
    return split_registries(data, 3, "non-iid", seed=0, by="differ")


@pytest.fixture(scope="module")
def run(frames: list[pd.DataFrame], schema: Schema) -> FederatedResult:
    return train_federated(frames, schema, TINY, progress=False)


def levels(encoder: TabularEncoder, array: np.ndarray) -> np.ndarray:
    start, width = encoder.levels_span("differ")
    return np.asarray(array)[:, start:start + width].argmax(axis=1)


def test_the_agreed_statistics_hold_the_pooled_level_counts(frames: list[pd.DataFrame], schema: Schema) -> None:
    encoder = build_encoder(frames, schema, TINY)
    pooled = pd.concat(frames)["differ"]
    expected = [float((pooled == lv).sum()) for lv in (1, 2, 3)] + [float(pooled.isna().sum())]
    assert encoder.level_counts("differ") == tuple(expected)
    # without condition_on the statistics (and so the encoder's hash) are as before the lever
    plain = build_encoder(frames, schema, replace(TINY, condition_on=None))
    assert plain.stats is not None and "differ" not in plain.stats.counts
    assert plain.hash() == TabularEncoder(schema, EncoderStats.combine(
        [EncoderStats.from_frame(f, schema) for f in frames])).hash()


def test_a_registry_draws_only_the_levels_it_holds_and_judges_them_against_its_own(
        frames: list[pd.DataFrame], schema: Schema) -> None:
    encoder = build_encoder(frames, schema, TINY)
    encoded = encoder.encode(frames[0])
    held = set(levels(encoder, encoded).tolist())
    condition = Condition.local(encoder, "differ", encoded)
    assert {k for k, p in enumerate(condition.probs) if p > 0} == held
    gen, _ = build_models(encoder.output_dim, TINY.model_config(schema), TINY.seed)
    side = GeneratorSide(gen, encoder.output_info, TINY.tau, TINY.optim_config(), condition)
    fake = side.make_fake(400, seed=11).array
    start, width = encoder.levels_span("differ")
    span = fake[:, start:start + width]
    assert set(np.unique(span).tolist()) == {0.0, 1.0} and (span.sum(axis=1) == 1).all()  # given, not generated
    assert set(levels(encoder, fake).tolist()) <= held
    sampler = ConditionalSampler(encoded, 5, start, width)
    real = sampler.sample_for(fake)
    assert np.array_equal(levels(encoder, real), levels(encoder, fake))  # row by row the same condition
    other = next(f for f in frames[1:] if not held <= set(levels(encoder, encoder.encode(f)).tolist()))
    with pytest.raises(ConditionError, match="holds no record of"):
        ConditionalSampler(encoder.encode(other), 5, start, width).sample_for(fake)


def test_sampling_draws_the_column_at_the_consortium_frequencies(run: FederatedResult,
                                                                 frames: list[pd.DataFrame]) -> None:
    synthetic = run.sample(4000, seed=1)
    pooled = pd.concat(frames)["differ"]
    for level in (1, 2, 3):
        assert abs(float((synthetic["differ"] == level).mean()) - float((pooled == level).mean())) < 0.03
    assert abs(float(synthetic["differ"].isna().mean()) - float(pooled.isna().mean())) < 0.03
    assert run.sample(50, seed=2).equals(run.sample(50, seed=2))


def test_a_conditional_run_reproduces_and_round_trips_through_a_bundle(
        run: FederatedResult, frames: list[pd.DataFrame], schema: Schema, tmp_path: Path) -> None:
    again = train_federated(frames, schema, TINY, progress=False)
    assert np.array_equal(again.generator_vector(), run.generator_vector())
    assert run.generator().net[0].fc.in_features == TINY.noise_dim + 4  # [z ‖ c]: 3 levels + missing
    write_bundle(tmp_path / "b", generator=run.generator(), discriminator_vector=np.zeros(0, np.float32),
                 encoder=run.encoder, schema=schema, config=TINY, run_id="r", aggregation_run="r", round=1,
                 average_sha256=sha256_hex(run.average_vector()))
    bundle = load_bundle(tmp_path / "b")
    pd.testing.assert_frame_equal(bundle.sample(64, seed=5), run.sample(64, seed=5))
    assert TrainConfig.from_dict(TINY.to_dict()) == TINY
    assert "condition_on" not in replace(TINY, condition_on=None).to_dict()


def test_an_unconditional_batch_is_unchanged_by_the_lever(schema: Schema, frames: list[pd.DataFrame]) -> None:
    """No condition: the same draws as before (noise, then Gumbel), so earlier runs reproduce."""
    from synthreg.gan.models import activate, sample_noise

    cfg = replace(TINY, condition_on=None)
    encoder = build_encoder(frames, schema, cfg)
    gen, _ = build_models(encoder.output_dim, cfg.model_config(schema), 1)
    rng = torch.Generator().manual_seed(9)
    with torch.no_grad():
        expected = activate(gen(sample_noise(20, cfg.noise_dim, rng)), encoder.output_info, cfg.tau, rng)
        got = GeneratorSide(gen, encoder.output_info, cfg.tau, cfg.optim_config()).forward(20, 9)
    assert torch.equal(expected, got)


def test_bad_conditions_are_refused(frames: list[pd.DataFrame], schema: Schema) -> None:
    with pytest.raises(TrainConfigError, match="categorical or binary"):
        train_federated(frames, schema, replace(TINY, condition_on="age"), progress=False)
    with pytest.raises(TrainConfigError, match="not a column"):
        train_federated(frames, schema, replace(TINY, condition_on="stage"), progress=False)
    with pytest.raises(TrainConfigError, match="needs the schema"):
        TINY.model_config()
    with pytest.raises(TrainConfigError, match="do not combine"):
        TrainConfig(pac=1, batch_size=20, condition_on="differ", dp_epsilon=10.0, dp_delta=1e-5,
                    dp_noise_multiplier=1.0, dp_sample_rate=0.05)
    with pytest.raises(TrainConfigError, match="column name or null"):
        replace(TINY, condition_on="")
    encoder = build_encoder(frames, schema, TINY)
    with pytest.raises(ConditionError, match="positive sum"):
        Condition.from_counts(encoder, "differ", [0, 0, 0, 0])
    with pytest.raises(ConditionError, match="4 finite"):
        Condition.from_counts(encoder, "differ", [1, 2])


def test_a_run_document_naming_a_column_that_cannot_condition_is_refused(schema: Schema) -> None:
    good = RunSpec(participants=("A",), schema_text=schema.dump(), config=replace(TINY, num_threads=1),
                   threshold=1, audit_rounds=(), ceremony_id="c")
    assert good.config.condition_on == "differ"
    with pytest.raises(RunSpecError, match="categorical or binary"):
        replace(good, config=replace(good.config, condition_on="nodes"))

"""The encoder is derived from the agreed schema (+ agreed stats) only: identical everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthreg.data import Schema, load_dataset, split_registries, validate
from synthreg.gan.encoder import EncoderStats, EncodingShapeError, TabularEncoder


@pytest.fixture(scope="module")
def rotterdam() -> pd.DataFrame:
    return load_dataset("rotterdam")


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.bundled("rotterdam")


def test_every_registry_builds_the_same_encoder(rotterdam: pd.DataFrame, schema: Schema) -> None:
    parts = split_registries(rotterdam, 3, "non-iid", seed=0, by="year")
    # each registry contributes its histogram; the consortium agrees on the sum
    local = [EncoderStats.from_frame(p, schema) for p in parts]
    agreed = EncoderStats.combine(local)
    encoders = [TabularEncoder(Schema.loads(schema.dump()), agreed) for _ in parts]
    assert len({e.to_bytes() for e in encoders}) == 1
    assert len({e.hash() for e in encoders}) == 1
    # the sum of registry histograms is the pooled histogram
    assert agreed == EncoderStats.from_frame(rotterdam, schema)
    # a per-registry fitted encoder would differ (the hash notices)
    assert TabularEncoder(schema, local[0]).hash() != encoders[0].hash()
    # schema-only encoders are identical too
    assert TabularEncoder(schema).hash() == TabularEncoder(Schema.bundled("rotterdam")).hash()


def test_layout_and_range(rotterdam: pd.DataFrame, schema: Schema) -> None:
    enc = TabularEncoder(schema, EncoderStats.from_frame(rotterdam, schema))
    x = enc.encode(rotterdam)
    assert x.dtype == np.float32 and x.shape == (2982, enc.output_dim)
    assert enc.output_dim == sum(s.dim for s in enc.output_info) == 22
    assert np.abs(x).max() <= 4.8
    pos = 0
    for span in enc.output_info:
        if span.kind == "softmax":
            np.testing.assert_array_equal(x[:, pos:pos + span.dim].sum(axis=1), 1.0)
        pos += span.dim


@pytest.mark.parametrize("with_stats", [True, False])
def test_roundtrip_is_exact(rotterdam: pd.DataFrame, schema: Schema, with_stats: bool) -> None:
    stats = EncoderStats.from_frame(rotterdam, schema) if with_stats else None
    enc = TabularEncoder(schema, stats)
    back = enc.decode(enc.encode(rotterdam))
    pd.testing.assert_frame_equal(back, rotterdam)


def test_agreed_cdf_makes_gaussian_noise_match_marginals(rotterdam: pd.DataFrame,
                                                          schema: Schema) -> None:
    enc = TabularEncoder(schema, EncoderStats.from_frame(rotterdam, schema))
    noise = np.random.default_rng(0).standard_normal((20000, enc.output_dim))
    decoded = enc.decode(noise)
    for col in ("year", "age", "nodes", "pgr"):
        real_q = np.quantile(rotterdam[col], [0.25, 0.5, 0.75])
        synth_q = np.quantile(decoded[col], [0.25, 0.5, 0.75])
        np.testing.assert_allclose(synth_q, real_q, rtol=0.1, atol=2)


def test_nullable_columns_roundtrip() -> None:
    schema = Schema.loads(
        "name: n\nversion: 1\ncolumns:\n"
        "  - {name: dose, type: continuous, min: 0, max: 10, nullable: true}\n"
        "  - {name: stage, type: categorical, categories: [a, b], nullable: true}\n"
        "  - {name: grade, type: categorical, categories: [1, 2], nullable: true}\n"
        "  - {name: count, type: integer, min: 0, max: 9, nullable: true}\n"
    )
    df = validate(pd.DataFrame({
        "dose": [1.5, None, 9.0], "stage": ["a", None, "b"],
        "grade": [2, 1, None], "count": [None, 3, 9],
    }), schema)
    enc = TabularEncoder(schema)
    assert enc.output_dim == 3 + 3 + 3 + 3
    back = enc.decode(enc.encode(df))
    assert back["stage"].tolist() == ["a", None, "b"]
    assert back["grade"].isna().tolist() == [False, False, True]
    assert back["count"].isna().tolist() == [True, False, False]
    np.testing.assert_allclose(back["dose"].to_numpy(), df["dose"].to_numpy(), atol=1e-5)


def test_decode_rejects_wrong_width(schema: Schema) -> None:
    with pytest.raises(EncodingShapeError):
        TabularEncoder(schema).decode(np.zeros((4, 5), dtype=np.float32))


def test_a_secure_sum_of_flattened_histograms_gives_the_same_encoder() -> None:
    from synthreg.data import Schema, load_dataset, split_registries
    from synthreg.gan.encoder import EncoderStats, EncoderStatsError
    from synthreg.gan.federated import TrainConfig, build_encoder

    schema = Schema.bundled("rotterdam")
    frames = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    config = TrainConfig()
    noisy = lambda vecs: np.sum(vecs, axis=0) + 3e-9  # noqa: E731  (fixed-point residue of a masked sum)
    assert build_encoder(frames, schema, config, secure_sum=noisy).hash() == build_encoder(frames, schema,
                                                                                          config).hash()
    stats = EncoderStats.from_frame(frames[0], schema)
    assert stats.from_vector(stats.to_vector()) == stats
    with pytest.raises(EncoderStatsError):
        stats.from_vector(stats.to_vector()[:-1])
    with pytest.raises(EncoderStatsError):
        stats.from_vector(-stats.to_vector() - 1)

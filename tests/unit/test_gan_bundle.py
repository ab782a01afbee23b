"""Model bundle: safetensors + JSON/YAML, hash checks, the same sampling path, verification."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
import torch

from synthreg.data import load_dataset
from synthreg.data.schema import Schema
from synthreg.gan.bundle import (
    DISCRIMINATOR_KEY,
    ENCODER_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    SCHEMA_FILE,
    Bundle,
    BundleFileError,
    BundleHashError,
    BundleNotRecordedError,
    BundleShapeError,
    BundleVerificationError,
    load_bundle,
    verify_bundle,
    write_bundle,
)
from synthreg.gan.encoder import EncoderFormatError, EncoderStats, TabularEncoder
from synthreg.gan.federated import FederatedResult, TrainConfig, TrainConfigError
from synthreg.gan.models import Generator, build_models
from synthreg.gan.weights import state_dict_to_vector
from synthreg.secagg.wire import average_sha256

CONFIG = TrainConfig(noise_dim=8, gen_dims=(16,), dis_dims=(16,), pac=2, batch_size=10, rounds=3)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return load_dataset("colon").head(200).reset_index(drop=True)  # nullable columns too


@pytest.fixture(scope="module")
def encoder(real: pd.DataFrame) -> TabularEncoder:
    schema = Schema.bundled("colon")
    return TabularEncoder(schema, EncoderStats.from_frame(real, schema, CONFIG.bins))


def models(encoder: TabularEncoder, seed: int = 1) -> tuple[Generator, np.ndarray]:
    gen, dis = build_models(encoder.output_dim, CONFIG.model_config(), seed)
    return gen, state_dict_to_vector(dis)


def write(path: Path, encoder: TabularEncoder, gen: Generator | None = None, dvec: np.ndarray | None = None,
          **kw: Any) -> Bundle:
    if gen is None or dvec is None:
        gen, dvec = models(encoder)
    args: dict[str, Any] = dict(
        generator=gen, discriminator_vector=dvec, encoder=encoder, schema=encoder.schema, config=CONFIG,
        run_id="run-1", aggregation_run="run-1", round=2)
    args.update(kw)
    if "average_sha256" not in args:
        args["average_sha256"] = average_sha256(np.concatenate([state_dict_to_vector(gen), dvec]))
    return write_bundle(path, **args)


def rewrite_manifest(path: Path, **changes: Any) -> None:
    """Edit bundle.json consistently, as a forger would (file hashes recomputed)."""
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest.update(changes)
    manifest["files"] = {n: hashlib.sha256((path / n).read_bytes()).hexdigest()
                         for n in (MODEL_FILE, ENCODER_FILE, SCHEMA_FILE)}
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


# --------------------------------------------------------------------------- encoder


@pytest.mark.parametrize("with_stats", [True, False])
def test_encoder_from_bytes_is_the_same_encoder(real: pd.DataFrame, encoder: TabularEncoder,
                                                with_stats: bool) -> None:
    enc = encoder if with_stats else TabularEncoder(encoder.schema)
    loaded = TabularEncoder.from_bytes(enc.to_bytes(), enc.schema)
    assert loaded.hash() == enc.hash() and loaded.to_bytes() == enc.to_bytes()
    assert loaded.output_info == enc.output_info
    encoded = enc.encode(real)
    np.testing.assert_array_equal(loaded.encode(real), encoded)
    pd.testing.assert_frame_equal(loaded.decode(encoded), enc.decode(encoded))
    assert TabularEncoder.from_dict(json.loads(enc.to_bytes()), enc.schema).hash() == enc.hash()


def test_encoder_from_bytes_refuses_another_schema_or_garbage(encoder: TabularEncoder) -> None:
    with pytest.raises(EncoderFormatError, match="built on schema"):
        TabularEncoder.from_bytes(encoder.to_bytes(), Schema.bundled("rotterdam"))
    with pytest.raises(EncoderFormatError, match="not JSON"):
        TabularEncoder.from_bytes(b"\x00{", encoder.schema)
    doc = json.loads(encoder.to_bytes())
    doc["output_info"] = doc["output_info"][:-1]
    with pytest.raises(EncoderFormatError, match="output_info"):
        TabularEncoder.from_dict(doc, encoder.schema)


def test_train_config_round_trips_and_refuses_unknown_keys() -> None:
    assert TrainConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG
    with pytest.raises(TrainConfigError, match="unknown config keys"):
        TrainConfig.from_dict({**CONFIG.to_dict(), "extra": 1})


# --------------------------------------------------------------------------- write / load


def test_write_load_round_trip(tmp_path: Path, encoder: TabularEncoder) -> None:
    gen, dvec = models(encoder)
    bundle = write(tmp_path / "b", encoder, gen, dvec)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        [MODEL_FILE, ENCODER_FILE, SCHEMA_FILE, MANIFEST_FILE])
    tensors = safetensors.numpy.load((tmp_path / "b" / MODEL_FILE).read_bytes())
    assert set(tensors) == set(gen.state_dict()) | {DISCRIMINATOR_KEY}
    assert all(t.dtype == np.float32 for t in tensors.values())
    np.testing.assert_array_equal(tensors[DISCRIMINATOR_KEY], dvec)
    assert (tmp_path / "b" / ENCODER_FILE).read_bytes() == encoder.to_bytes()
    assert Schema.load(tmp_path / "b" / SCHEMA_FILE).hash() == encoder.schema.hash()
    manifest = json.loads((tmp_path / "b" / MANIFEST_FILE).read_text())
    assert manifest["encoder_sha256"] == encoder.hash() and manifest["schema_sha256"] == encoder.schema.hash()
    assert (manifest["run_id"], manifest["aggregation_run"], manifest["round"]) == ("run-1", "run-1", 2)
    assert TrainConfig.from_dict(manifest["config"]) == CONFIG

    loaded = load_bundle(tmp_path / "b")
    np.testing.assert_array_equal(loaded.generator_vector(), state_dict_to_vector(gen))
    np.testing.assert_array_equal(loaded.discriminator_vector, dvec)
    assert loaded.encoder.hash() == encoder.hash() and loaded.config == CONFIG
    # the model's identity is secure aggregation's hash of the agreed [G ‖ D] average
    agreed = np.concatenate([state_dict_to_vector(gen), dvec])
    assert loaded.average_sha256_computed() == average_sha256(agreed) == loaded.average_sha256 == bundle.average_sha256


def test_bundle_samples_exactly_like_the_training_result(tmp_path: Path, encoder: TabularEncoder) -> None:
    gen, dis = build_models(encoder.output_dim, CONFIG.model_config(), 7)
    result = FederatedResult(encoder=encoder, config=CONFIG, generator_state=gen.state_dict(),
                             discriminator_state=dis.state_dict(), history=[], registry_sizes=[200],
                             wall_seconds=0.0)
    bundle = write(tmp_path / "b", encoder, result.generator(), result.discriminator_vector(),
                   average_sha256=average_sha256(result.average_vector()))
    a, b = result.sample(64, seed=5), bundle.sample(64, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not b.equals(bundle.sample(64, seed=6))
    assert bundle.average_sha256_computed() == average_sha256(result.average_vector())


def test_generator_can_be_given_as_a_state_dict(tmp_path: Path, encoder: TabularEncoder) -> None:
    gen, dvec = models(encoder)
    bundle = write(tmp_path / "b", encoder, gen.state_dict(), dvec,  # type: ignore[arg-type]
                   average_sha256=average_sha256(np.concatenate([state_dict_to_vector(gen), dvec])))
    assert isinstance(bundle.generator, Generator)
    np.testing.assert_array_equal(bundle.generator_vector(), state_dict_to_vector(gen))


def test_write_refuses_inconsistent_inputs(tmp_path: Path, encoder: TabularEncoder) -> None:
    gen, dvec = models(encoder)
    with pytest.raises(BundleVerificationError) as info:
        write(tmp_path / "b", encoder, gen, dvec, average_sha256="0" * 64)
    assert "0" * 64 in str(info.value) and not (tmp_path / "b").exists()
    with pytest.raises(BundleShapeError, match=DISCRIMINATOR_KEY):
        write(tmp_path / "b", encoder, gen, dvec[:-1], average_sha256="0" * 64)
    other, _ = build_models(encoder.output_dim + 1, CONFIG.model_config(), 0)
    with pytest.raises(BundleShapeError, match="generator"):
        write(tmp_path / "b", encoder, other, dvec)
    with pytest.raises(BundleFileError, match="schema"):
        write(tmp_path / "b", encoder, gen, dvec, schema=Schema.bundled("rotterdam"))


def test_existing_targets(tmp_path: Path, encoder: TabularEncoder) -> None:
    write(tmp_path / "b", encoder)
    with pytest.raises(BundleFileError, match="already exists"):
        write(tmp_path / "b", encoder)
    gen, dvec = models(encoder, seed=2)
    replaced = write(tmp_path / "b", encoder, gen, dvec, overwrite=True)
    np.testing.assert_array_equal(replaced.discriminator_vector, dvec)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(BundleFileError, match="not a model bundle"):
        write(tmp_path / "other", encoder, overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dirs left


# --------------------------------------------------------------------------- damaged bundles


def test_a_changed_file_is_named(tmp_path: Path, encoder: TabularEncoder) -> None:
    path = tmp_path / "b"
    write(path, encoder)
    data = bytearray((path / MODEL_FILE).read_bytes())
    data[-1] ^= 0x01
    (path / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleHashError) as info:
        load_bundle(path)
    assert info.value.file == MODEL_FILE and MODEL_FILE in str(info.value)


@pytest.mark.parametrize("name", [MODEL_FILE, ENCODER_FILE, SCHEMA_FILE, MANIFEST_FILE])
def test_a_missing_file_is_named(tmp_path: Path, encoder: TabularEncoder, name: str) -> None:
    path = tmp_path / "b"
    write(path, encoder)
    (path / name).unlink()
    with pytest.raises(BundleFileError) as info:
        load_bundle(path)
    assert info.value.file == name and "missing" in str(info.value)


def test_malformed_manifest_and_wrong_shapes(tmp_path: Path, encoder: TabularEncoder) -> None:
    path = tmp_path / "b"
    write(path, encoder)
    (path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(BundleFileError, match="not JSON"):
        load_bundle(path)
    write(path, encoder, overwrite=True)
    rewrite_manifest(path, round=-1)
    with pytest.raises(BundleFileError, match="'round'"):
        load_bundle(path)
    write(path, encoder, overwrite=True)
    tensors = safetensors.numpy.load((path / MODEL_FILE).read_bytes())
    tensors[DISCRIMINATOR_KEY] = tensors[DISCRIMINATOR_KEY][:-3]
    (path / MODEL_FILE).write_bytes(safetensors.numpy.save(tensors))
    rewrite_manifest(path)
    with pytest.raises(BundleShapeError) as info:
        load_bundle(path)
    assert info.value.file == MODEL_FILE and DISCRIMINATOR_KEY in str(info.value)
    tensors.pop(DISCRIMINATOR_KEY)
    tensors["extra"] = np.zeros(2, np.float32)
    (path / MODEL_FILE).write_bytes(safetensors.numpy.save(tensors))
    rewrite_manifest(path)
    with pytest.raises(BundleShapeError, match="missing \\['discriminator_vector'\\], unexpected \\['extra'\\]"):
        load_bundle(path)


# --------------------------------------------------------------------------- verification


def test_verify_accepts_the_agreed_model(tmp_path: Path, encoder: TabularEncoder) -> None:
    bundle = write(tmp_path / "b", encoder)
    asked: list[tuple[str, int]] = []

    def lookup(run: str, rnd: int) -> str:
        asked.append((run, rnd))
        return bundle.average_sha256.upper()  # hex case does not matter

    result = verify_bundle(bundle, lookup)
    assert asked == [("run-1", 2)]
    assert result.computed_sha256 == result.agreed_sha256 == result.recorded_sha256 == bundle.average_sha256


def test_one_changed_weight_is_refused_against_the_ledger(tmp_path: Path, encoder: TabularEncoder) -> None:
    gen, dvec = models(encoder)
    agreed = average_sha256(np.concatenate([state_dict_to_vector(gen), dvec]))
    ledger = {("run-1", 2): agreed}
    with torch.no_grad():
        next(gen.parameters()).view(-1)[0] += 1e-3
    bundle = write(tmp_path / "b", encoder, gen, dvec)  # honestly recorded, but not what was agreed
    with pytest.raises(BundleVerificationError) as info:
        verify_bundle(bundle, lambda run, rnd: ledger[(run, rnd)])
    message = str(info.value)
    assert agreed in message and bundle.average_sha256_computed() in message and "ledger" in message


def test_one_changed_weight_is_refused_against_the_recorded_hash(tmp_path: Path, encoder: TabularEncoder) -> None:
    path = tmp_path / "b"
    bundle = write(path, encoder)
    recorded = bundle.average_sha256
    tensors = safetensors.numpy.load((path / MODEL_FILE).read_bytes())
    tensors[DISCRIMINATOR_KEY] = tensors[DISCRIMINATOR_KEY].copy()
    tensors[DISCRIMINATOR_KEY][0] += np.float32(1e-3)
    (path / MODEL_FILE).write_bytes(safetensors.numpy.save(tensors))
    rewrite_manifest(path)  # file hashes forged; the recorded average hash left alone
    forged = load_bundle(path)
    calls: list[object] = []
    with pytest.raises(BundleVerificationError) as info:
        verify_bundle(forged, lambda run, rnd: calls.append(run) or recorded)  # type: ignore[func-returns-value]
    assert recorded in str(info.value) and forged.average_sha256_computed() in str(info.value)
    assert "bundle.json" in str(info.value) and calls == []  # refused before asking the ledger


def test_a_bundle_trained_without_the_ledger_cannot_be_verified(tmp_path: Path, encoder: TabularEncoder) -> None:
    bundle = write(tmp_path / "b", encoder, aggregation_run="")
    with pytest.raises(BundleNotRecordedError):
        verify_bundle(bundle, lambda run, rnd: bundle.average_sha256)

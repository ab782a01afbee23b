"""Model bundle: the agreed final model on disk, checkable against the ledger.

Who calls: ``synthreg train-local`` writes one after training
(:func:`write_bundle`); ``synthreg sample`` reads it (:func:`load_bundle`),
optionally checks it against the agreed average on the ledger
(:func:`verify_bundle`, the ledger read injected by the CLI) and samples from
it (:meth:`Bundle.sample`, the same path as
:meth:`synthreg.gan.federated.FederatedResult.sample`).

Where data lives: a directory of four files, no pickles anywhere:

* ``model.safetensors`` -- the generator's tensors under their state-dict names
  and one 1-D float32 tensor ``discriminator_vector`` (the discriminator's flat
  weights, :func:`synthreg.gan.weights.state_dict_to_vector` order; empty when the
  run averaged the generator only: then every discriminator stayed with its registry);
* ``encoder.json``      -- :meth:`TabularEncoder.to_bytes` (so its sha256 is the
  encoder hash);
* ``schema.yaml``       -- the agreed schema (:meth:`Schema.dump`);
* ``bundle.json``       -- run id, aggregation run and round of the average,
  the recorded ``average_sha256``, the training config, encoder and schema
  hashes, parameter counts and the sha256 of each of the three files above.

The model's identity is :meth:`Bundle.average_sha256_computed`: sha256 of the
float32 little-endian bytes of [generator vector ‖ discriminator vector], the
layout every registry averages (:mod:`synthreg.gan.federated`), i.e.
:func:`synthreg.secagg.wire.average_sha256` of the agreed average of that round.

What fails when (all :class:`BundleError`, naming the bundle and the file):
:class:`BundleFileError` for a missing, unreadable or malformed file (or a
target that exists and is not a bundle); :class:`BundleHashError` when a file's
sha256 differs from ``bundle.json``; :class:`BundleShapeError` for a tensor that
is missing, extra, not float32 or of the wrong shape for the recorded config
and encoder; :class:`BundleVerificationError` when the weights' hash differs from
the recorded or the agreed one; :class:`BundleNotRecordedError` when a bundle
has no aggregation run to check.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors.numpy
import torch
from safetensors import SafetensorError

from synthreg.data.schema import Schema, SchemaFormatError
from synthreg.gan.encoder import EncoderFormatError, EncoderStatsError, TabularEncoder
from synthreg.gan.federated import TrainConfig, TrainConfigError
from synthreg.gan.models import Generator, build_models
from synthreg.gan.sampling import sample_records
from synthreg.gan.weights import state_dict_to_vector, vector_layout
from synthreg.secagg.wire import average_sha256

BUNDLE_FORMAT = "synthreg.bundle/1"
MODEL_FILE = "model.safetensors"
ENCODER_FILE = "encoder.json"
SCHEMA_FILE = "schema.yaml"
MANIFEST_FILE = "bundle.json"
DISCRIMINATOR_KEY = "discriminator_vector"
_FILES = (MODEL_FILE, ENCODER_FILE, SCHEMA_FILE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

AgreedHashLookup = Callable[[str, int], str]
"""lookup(aggregation run, round) -> the agreed average_sha256 of that round (hex)."""


# --------------------------------------------------------------------------- errors


class BundleError(ValueError):
    """Base of model-bundle failures; ``path`` is the bundle, ``file`` the file concerned."""

    def __init__(self, path: Path | str, file: str, detail: str) -> None:
        self.path = str(path)
        self.file = file
        self.detail = detail
        super().__init__(f"model bundle {self.path}: {file}: {detail}")


class BundleFileError(BundleError):
    """A file is missing, unreadable or malformed (or the target is not a bundle)."""


class BundleHashError(BundleError):
    """A file's content hash differs from the one ``bundle.json`` records."""

    def __init__(self, path: Path | str, file: str, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(path, file, f"{what} is {actual}, bundle.json records {expected}")


class BundleShapeError(BundleError):
    """A tensor is missing, extra, not float32 or of the wrong shape."""


class BundleNotRecordedError(BundleError):
    """The bundle names no aggregation run (trained without the ledger): nothing to verify against."""


class BundleVerificationError(BundleError):
    """The weights' hash differs from the recorded (``bundle.json``) or the agreed (ledger) hash."""

    def __init__(self, path: Path | str, against: str, expected: str, computed: str) -> None:
        self.against = against
        self.expected = expected
        self.computed = computed
        super().__init__(path, MODEL_FILE,
                         f"weights hash {computed} differs from {against} {expected}; refusing this model")


# --------------------------------------------------------------------------- bundle


@dataclass
class Bundle:
    """A loaded, file-hash-checked model bundle (see the module docstring)."""

    path: Path
    run_id: str
    aggregation_run: str
    round: int
    average_sha256: str
    """the hash recorded in bundle.json (compare :meth:`average_sha256_computed`)"""
    config: TrainConfig
    schema: Schema
    encoder: TabularEncoder
    generator: Generator
    discriminator_vector: np.ndarray
    manifest: dict[str, Any] = field(repr=False)

    def generator_vector(self) -> np.ndarray:
        return state_dict_to_vector(self.generator)

    def average_vector(self) -> np.ndarray:
        """[G ‖ D] as float32: the vector the consortium averaged in :attr:`round`."""
        return np.concatenate([self.generator_vector(), self.discriminator_vector]).astype(np.float32, copy=False)

    def average_sha256_computed(self) -> str:
        """sha256 of the float32 LE bytes of :meth:`average_vector` (``secagg.wire.average_sha256``)."""
        return average_sha256(self.average_vector())

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` synthetic records (seeded), exactly as ``FederatedResult.sample`` would give."""
        return sample_records(self.generator, self.encoder, self.config, n, seed)


@dataclass(frozen=True)
class BundleVerification:
    """A bundle that passed :func:`verify_bundle`: all three hashes are equal."""

    aggregation_run: str
    round: int
    computed_sha256: str
    recorded_sha256: str
    agreed_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"aggregation_run": self.aggregation_run, "round": self.round,
                "computed_sha256": self.computed_sha256, "recorded_sha256": self.recorded_sha256,
                "agreed_sha256": self.agreed_sha256}


def write_bundle(
    path: Path,
    *,
    generator: Generator | Mapping[str, torch.Tensor],
    discriminator_vector: np.ndarray,
    encoder: TabularEncoder,
    schema: Schema,
    config: TrainConfig,
    run_id: str,
    aggregation_run: str,
    round: int,
    average_sha256: str,
    overwrite: bool = False,
) -> Bundle:
    """Write a bundle directory at ``path`` and return it loaded back.

    ``generator`` is a module or its state dict; ``discriminator_vector`` the
    discriminator's flat float32 weights; ``average_sha256`` the hash the
    consortium agreed for ``round`` of ``aggregation_run`` ("" when trained
    without the ledger) -- it must be the hash of these weights, else
    :class:`BundleVerificationError` and nothing is written. Files go to a
    temporary sibling directory that is renamed into place; an existing
    ``path`` is replaced only with ``overwrite`` and only if it is a bundle
    (or empty), else :class:`BundleFileError`.
    """
    path = Path(path)
    if encoder.schema.hash() != schema.hash():
        raise BundleFileError(path, ENCODER_FILE, f"encoder was built on schema {encoder.schema.hash()}, "
                                                  f"not on {schema.name!r} ({schema.hash()})")
    gen = _generator_module(path, generator, encoder, config)
    dvec = _check_discriminator(path, np.asarray(discriminator_vector), encoder, config)
    computed = _hash_of(gen, dvec)
    if average_sha256 != computed:
        raise BundleVerificationError(path, "the average_sha256 given to write_bundle", average_sha256, computed)
    if round < 0:
        raise BundleFileError(path, MANIFEST_FILE, f"round must be >= 0, got {round}")
    tensors = {k: v.detach().cpu().to(torch.float32).contiguous().numpy() for k, v in gen.state_dict().items()}
    tensors[DISCRIMINATOR_KEY] = dvec
    blobs = {
        MODEL_FILE: safetensors.numpy.save(tensors, metadata={"format": BUNDLE_FORMAT}),
        ENCODER_FILE: encoder.to_bytes(),
        SCHEMA_FILE: schema.dump().encode("utf-8"),
    }
    manifest = {
        "format": BUNDLE_FORMAT,
        "run_id": run_id,
        "aggregation_run": aggregation_run,
        "round": round,
        "average_sha256": average_sha256,
        "config": config.to_dict(),
        "encoder_sha256": encoder.hash(),
        "schema_sha256": schema.hash(),
        "schema_name": schema.name,
        "generator_parameters": int(sum(t.size for k, t in tensors.items() if k != DISCRIMINATOR_KEY)),
        "discriminator_parameters": int(dvec.size),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()},
    }
    blobs[MANIFEST_FILE] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
    _replace_dir(path, blobs, overwrite)
    return load_bundle(path)


def load_bundle(path: Path | str) -> Bundle:
    """Read and check a bundle: manifest, every file's sha256, schema, encoder, tensor shapes.

    Each file is hashed from the same bytes that are parsed. Raises
    :class:`BundleFileError`, :class:`BundleHashError`, :class:`BundleShapeError`.
    Does not compare the weights with the recorded average hash: that is
    :func:`verify_bundle`'s job.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleFileError(path, ".", "not a directory (expected a bundle written by write_bundle)")
    manifest = _read_manifest(path)
    blobs: dict[str, bytes] = {}
    for name in _FILES:
        data = _read(path, name)
        actual = hashlib.sha256(data).hexdigest()
        if actual != manifest["files"][name]:
            raise BundleHashError(path, name, "sha256", manifest["files"][name], actual)
        blobs[name] = data
    try:
        schema = Schema.loads(blobs[SCHEMA_FILE].decode("utf-8"), source=str(path / SCHEMA_FILE))
    except (SchemaFormatError, UnicodeDecodeError) as exc:
        raise BundleFileError(path, SCHEMA_FILE, str(exc)) from exc
    if schema.hash() != manifest["schema_sha256"]:
        raise BundleHashError(path, SCHEMA_FILE, "schema hash", manifest["schema_sha256"], schema.hash())
    try:
        config = TrainConfig.from_dict(manifest["config"])
    except TrainConfigError as exc:
        raise BundleFileError(path, MANIFEST_FILE, f"config: {exc}") from exc
    try:
        encoder = TabularEncoder.from_bytes(blobs[ENCODER_FILE], schema)
    except (EncoderFormatError, EncoderStatsError) as exc:
        raise BundleFileError(path, ENCODER_FILE, str(exc)) from exc
    if encoder.hash() != manifest["encoder_sha256"]:
        raise BundleHashError(path, ENCODER_FILE, "encoder hash", manifest["encoder_sha256"], encoder.hash())
    generator, dvec = _read_model(path, blobs[MODEL_FILE], encoder, config)
    return Bundle(
        path=path, run_id=manifest["run_id"], aggregation_run=manifest["aggregation_run"],
        round=manifest["round"], average_sha256=manifest["average_sha256"], config=config,
        schema=schema, encoder=encoder, generator=generator, discriminator_vector=dvec, manifest=manifest,
    )


def verify_bundle(bundle: Bundle, agreed_sha256_lookup: AgreedHashLookup) -> BundleVerification:
    """Check that the bundle's weights are the average the consortium agreed on.

    Pure: the ledger read is injected as ``agreed_sha256_lookup(aggregation_run,
    round)`` (the CLI reads ``GetRound`` on ``ganledger``; tests pass a dict).
    First the weights' hash must equal the one recorded in ``bundle.json``, then
    the agreed one; otherwise :class:`BundleVerificationError` naming both
    hashes. :class:`BundleNotRecordedError` if the bundle names no aggregation
    run; whatever the lookup raises passes through.
    """
    computed = bundle.average_sha256_computed()
    if computed != bundle.average_sha256:
        raise BundleVerificationError(bundle.path, "the average_sha256 recorded in bundle.json",
                                      bundle.average_sha256, computed)
    if not bundle.aggregation_run:
        raise BundleNotRecordedError(bundle.path, MANIFEST_FILE,
                                     f"run {bundle.run_id!r} was trained without the ledger (no aggregation "
                                     "run): there is no agreed hash to verify against")
    agreed = str(agreed_sha256_lookup(bundle.aggregation_run, bundle.round)).strip().lower()
    if agreed != computed:
        raise BundleVerificationError(
            bundle.path, f"the agreed average on the ledger (aggregation run {bundle.aggregation_run!r}, "
                         f"round {bundle.round})", agreed, computed)
    return BundleVerification(bundle.aggregation_run, bundle.round, computed, bundle.average_sha256, agreed)


# --------------------------------------------------------------------------- helpers


def _reference_models(encoder: TabularEncoder, config: TrainConfig) -> tuple[Generator, int]:
    """A generator of the bundle's shape and the shared discriminator vector's length
    (0 when only G was averaged: the discriminators stayed with their registries)."""
    gen, dis = build_models(encoder.output_dim, config.model_config(encoder.schema), 0)
    if config.generator_only:
        return gen, 0
    return gen, sum(int(np.prod(shape, dtype=np.int64)) for _, shape in vector_layout(dis))


def _generator_module(path: Path, generator: Generator | Mapping[str, torch.Tensor],
                      encoder: TabularEncoder, config: TrainConfig) -> Generator:
    ref, _ = _reference_models(encoder, config)
    state = generator.state_dict() if isinstance(generator, torch.nn.Module) else dict(generator)
    try:
        ref.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as exc:
        raise BundleShapeError(path, MODEL_FILE, f"generator does not fit config and encoder: {exc}") from exc
    ref.eval()
    return ref


def _check_discriminator(path: Path, dvec: np.ndarray, encoder: TabularEncoder, config: TrainConfig) -> np.ndarray:
    _, n_d = _reference_models(encoder, config)
    if dvec.dtype != np.float32 or dvec.ndim != 1 or dvec.size != n_d:
        raise BundleShapeError(path, MODEL_FILE, f"{DISCRIMINATOR_KEY} must be 1-D float32 of {n_d} values, "
                                                 f"got shape {dvec.shape} dtype {dvec.dtype}")
    if not np.isfinite(dvec).all():
        raise BundleShapeError(path, MODEL_FILE, f"{DISCRIMINATOR_KEY} has NaN/Inf values")
    return np.ascontiguousarray(dvec)


def _hash_of(gen: Generator, dvec: np.ndarray) -> str:
    return average_sha256(np.concatenate([state_dict_to_vector(gen), dvec]).astype(np.float32, copy=False))


def _read(path: Path, name: str) -> bytes:
    try:
        return (path / name).read_bytes()
    except FileNotFoundError:
        raise BundleFileError(path, name, "missing") from None
    except OSError as exc:
        raise BundleFileError(path, name, f"unreadable: {exc.strerror or exc}") from exc


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(_read(path, MANIFEST_FILE).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleFileError(path, MANIFEST_FILE, f"not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleFileError(path, MANIFEST_FILE, f"format {found!r}, expected {BUNDLE_FORMAT!r}")
    checks: dict[str, Callable[[Any], bool]] = {
        "run_id": lambda v: isinstance(v, str) and bool(v),
        "aggregation_run": lambda v: isinstance(v, str),
        "round": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "average_sha256": lambda v: isinstance(v, str) and bool(_HEX64.match(v)),
        "encoder_sha256": lambda v: isinstance(v, str) and bool(_HEX64.match(v)),
        "schema_sha256": lambda v: isinstance(v, str) and bool(_HEX64.match(v)),
        "config": lambda v: isinstance(v, dict),
        "files": lambda v: isinstance(v, dict) and set(v) == set(_FILES)
        and all(isinstance(h, str) and _HEX64.match(h) for h in v.values()),
    }
    for key, ok in checks.items():
        if key not in manifest:
            raise BundleFileError(path, MANIFEST_FILE, f"missing key {key!r}")
        if not ok(manifest[key]):
            raise BundleFileError(path, MANIFEST_FILE, f"bad value for {key!r}: {manifest[key]!r}")
    return manifest


def _read_model(path: Path, data: bytes, encoder: TabularEncoder,
                config: TrainConfig) -> tuple[Generator, np.ndarray]:
    try:
        tensors = safetensors.numpy.load(data)
    except (SafetensorError, ValueError) as exc:
        raise BundleFileError(path, MODEL_FILE, f"not a safetensors file: {exc}") from exc
    ref, n_d = _reference_models(encoder, config)
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    expected[DISCRIMINATOR_KEY] = (n_d,)
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise BundleShapeError(path, MODEL_FILE, f"tensors missing {missing}, unexpected {extra}")
    for key, shape in expected.items():
        arr = tensors[key]
        if arr.dtype != np.float32 or tuple(arr.shape) != shape:
            raise BundleShapeError(path, MODEL_FILE, f"tensor {key!r} is {arr.dtype} {tuple(arr.shape)}, "
                                                     f"expected float32 {shape}")
        if not np.isfinite(arr).all():
            raise BundleShapeError(path, MODEL_FILE, f"tensor {key!r} has NaN/Inf values")
    ref.load_state_dict({k: torch.from_numpy(tensors[k].copy()) for k in expected if k != DISCRIMINATOR_KEY})
    ref.eval()
    return ref, np.ascontiguousarray(tensors[DISCRIMINATOR_KEY])


def _replace_dir(path: Path, blobs: Mapping[str, bytes], overwrite: bool) -> None:
    if path.exists():
        if not path.is_dir():
            raise BundleFileError(path, ".", "exists and is not a directory")
        entries = list(path.iterdir())
        if entries and not overwrite:
            raise BundleFileError(path, ".", "already exists; choose another path (or overwrite)")
        if entries and not (path / MANIFEST_FILE).is_file():
            raise BundleFileError(path, ".", "exists and is not a model bundle; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        for name, data in blobs.items():
            (tmp / name).write_bytes(data)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

"""`synthreg train-local`: in-process federated training, no ledger.

Thin wiring: get each registry's frame, call
:func:`synthreg.gan.federated.train_federated`, write the artefacts. Two sources:

* ``--data A.csv --data B.csv ... --schema S.yaml``: each file is one registry's
  own records, read and validated by :func:`synthreg.data.csvload.load_csv`
  (errors name the file, line and column; fewer than ``--min-rows`` records are
  refused);
* otherwise a bundled dataset (``--dataset``, default rotterdam) split into
  ``--registries`` simulated registries (``--split``), validated against
  ``--schema`` if given, else the dataset's bundled schema.

Writes into ``--out``:

* ``synthetic.csv``   -- ``--samples`` synthetic records (default: as many as real)
* ``generator.npz``   -- ``vector`` (float32 flat weights, sorted state-dict keys),
  ``keys`` and ``shapes`` (layout); loadable with ``allow_pickle=False``
* ``model/``          -- the model bundle (:mod:`synthreg.gan.bundle`) for
  ``synthreg sample``; no aggregation run (nothing on a ledger to verify against)
* ``history.json``    -- ``{"history": [{round, registry, d_loss, g_loss}, ...]}``
* ``run.json``        -- config, schema/encoder hashes, registry sizes, wall time,
  SHA-256 of the generator vector, of the final [G ‖ D] average and of the
  synthetic frame; with ``--data`` also each file's SHA-256

Readable errors (exit code 2) instead of tracebacks for bad options, schema or
data errors.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import typer

from synthreg.data import (
    DEFAULT_MIN_ROWS,
    MalformedCSVError,
    Schema,
    SchemaFormatError,
    SchemaValidationError,
    SplitError,
    UnknownDatasetError,
    dataset_schema,
    load_csv,
    load_dataset,
    sha256_hex,
    split_registries,
)
from synthreg.gan.bundle import BundleError, write_bundle
from synthreg.gan.federated import FederatedResult, TrainConfig, TrainConfigError, train_federated
from synthreg.gan.weights import state_dict_to_vector, vector_layout
from synthreg.secagg.wire import average_sha256

MODEL_DIR = "model"


def write_artifacts(result: FederatedResult, out: Path, n_samples: int, sample_seed: int,
                    extra: dict[str, Any]) -> dict[str, Any]:
    """Write synthetic.csv, generator.npz, model/, history.json, run.json; return the run summary.

    The bundle in ``model/`` gets a fresh ``local-...`` run id and no aggregation
    run (this training was not on a ledger); ``extra["run_id"]`` overrides the id.
    Raises :class:`~synthreg.gan.bundle.BundleError` if ``out/model`` exists and
    is not a bundle.
    """
    out.mkdir(parents=True, exist_ok=True)
    synthetic = result.sample(n_samples, sample_seed)
    synthetic.to_csv(out / "synthetic.csv", index=False)
    gen = result.generator()
    vector = state_dict_to_vector(gen)
    layout = vector_layout(gen)
    np.savez(
        out / "generator.npz",
        vector=vector,
        keys=np.array([k for k, _ in layout]),
        shapes=np.array(json.dumps([list(s) for _, s in layout])),
    )
    average = result.average_vector()
    run_id = str(extra.get("run_id") or f"local-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}")
    write_bundle(out / MODEL_DIR, generator=gen, discriminator_vector=average[vector.size:],
                 encoder=result.encoder, schema=result.encoder.schema, config=result.config,
                 run_id=run_id, aggregation_run="", round=result.config.rounds - 1,
                 average_sha256=average_sha256(average), overwrite=True)
    (out / "history.json").write_text(json.dumps({"history": result.history_records()}, indent=1))
    summary: dict[str, Any] = {
        **extra,
        "run_id": run_id,
        "config": result.config.to_dict(),
        "schema_sha256": result.encoder.schema.hash(),
        "encoder_sha256": result.encoder.hash(),
        "registry_sizes": result.registry_sizes,
        "wall_seconds": round(result.wall_seconds, 2),
        "generator_sha256": sha256_hex(vector),
        "average_sha256": average_sha256(average),
        "model": str(out / MODEL_DIR),
        "synthetic_rows": len(synthetic),
        "synthetic_sha256": sha256_hex(synthetic),
        "final_round_losses": [
            {"registry": h.registry, "d_loss": h.d_loss, "g_loss": h.g_loss}
            for h in result.history if h.round == result.config.rounds - 1
        ],
        "out": str(out),
    }
    (out / "run.json").write_text(json.dumps(summary, indent=1))
    return summary


def train_local(
    data: list[Path] | None = typer.Option(
        None, "--data", exists=True, dir_okay=False, readable=True,
        help="a registry's own CSV; repeat once per registry (needs --schema). Default: a bundled dataset"),
    schema_path: Path | None = typer.Option(
        None, "--schema", exists=True, dir_okay=False, readable=True,
        help="agreed schema YAML (default: the bundled dataset's schema)"),
    min_rows: int = typer.Option(DEFAULT_MIN_ROWS, "--min-rows", min=1,
                                 help="refuse a --data file with fewer data rows"),
    dataset: str | None = typer.Option(None, help="bundled dataset name (default rotterdam; not with --data)"),
    registries: int | None = typer.Option(
        None, min=1, help="number of simulated registries (default 3; with --data: the number of files)"),
    split: str | None = typer.Option(
        None, help="iid | non-iid (by the schema's partition column; default non-iid; not with --data)"),
    rounds: int = typer.Option(TrainConfig.rounds, min=1, help="FedAvg rounds"),
    local_iters: int = typer.Option(TrainConfig.local_iters, min=1, help="iterations per round (K)"),
    batch_size: int = typer.Option(TrainConfig.batch_size, min=1, help="batch size (multiple of pac)"),
    weighting: str = typer.Option("uniform", help="FedAvg weights: uniform | size"),
    averaged: str = typer.Option(TrainConfig.averaged, help=(
        "what FedAvg averages: generator+discriminator | generator (each critic stays with its registry)")),
    lr_d: float = typer.Option(TrainConfig.lr_d, "--lr-d", min=0.0, help="the critics' Adam learning rate"),
    seed: int = typer.Option(0, help="seed for split, init, noise and sampling"),
    samples: int = typer.Option(0, min=0, help="synthetic rows to write (0 = as many as real)"),
    threads: int = typer.Option(
        1, min=1, help="torch CPU threads (the models are tiny: extra threads mostly spin)"
    ),
    out: Path = typer.Option(Path("out/train-local"), help="output directory"),
    json_out: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train the federated GAN in-process (no ledger) and write synthetic data, weights and a model bundle."""
    torch.set_num_threads(threads)
    try:
        if data:
            schema, frames, extra = _registry_files(data, schema_path, min_rows, dataset, registries, split)
        else:
            schema, frames, extra = _bundled_registries(dataset or "rotterdam", schema_path,
                                                        registries or 3, split or "non-iid", seed)
        config = TrainConfig(rounds=rounds, local_iters=local_iters, batch_size=batch_size,
                             seed=seed, weighting=weighting, averaged=averaged, lr_d=lr_d)  # type: ignore[arg-type]
        result = train_federated(frames, schema, config, progress=progress and not json_out)
        n_real = sum(len(f) for f in frames)
        summary = write_artifacts(result, out, samples or n_real, seed, extra)
    except (UnknownDatasetError, SplitError, TrainConfigError, SchemaValidationError, SchemaFormatError,
            MalformedCSVError, BundleError, _OptionError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from exc
    if json_out:
        typer.echo(json.dumps(summary, indent=1))
    else:
        typer.echo(
            f"trained {len(frames)} registries ({', '.join(map(str, result.registry_sizes))} rows) "
            f"for {rounds} rounds x {local_iters} iterations in {result.wall_seconds:.1f} s; "
            f"wrote {out}/synthetic.csv, generator.npz, {MODEL_DIR}/, history.json, run.json"
        )


class _OptionError(ValueError):
    """Options that do not go together (reported like the other input errors)."""


def _registry_files(data: list[Path], schema_path: Path | None, min_rows: int, dataset: str | None,
                    registries: int | None, split: str | None) -> tuple[Schema, list[pd.DataFrame], dict[str, Any]]:
    """One validated frame per --data file (each file is one registry)."""
    if schema_path is None:
        raise _OptionError("--data needs --schema (the agreed schema every registry's file is checked against)")
    if dataset is not None or split is not None:
        raise _OptionError("--dataset and --split are for the bundled data; with --data each file is one registry")
    if registries is not None and registries != len(data):
        raise _OptionError(f"--registries {registries} but {len(data)} --data files (one file per registry)")
    schema = Schema.load(schema_path)
    frames = [load_csv(path, schema, min_rows=min_rows) for path in data]
    extra = {"data": [str(p) for p in data],
             "data_sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in data],
             "registries": len(data)}
    return schema, frames, extra


def _bundled_registries(dataset: str, schema_path: Path | None, registries: int, split: str,
                        seed: int) -> tuple[Schema, list[pd.DataFrame], dict[str, Any]]:
    """A bundled dataset split into simulated registries (the pre-``--data`` behaviour)."""
    schema = Schema.load(schema_path) if schema_path is not None else dataset_schema(dataset)
    real = load_dataset(dataset)
    if split not in ("iid", "non-iid"):
        raise SplitError(f"unknown split mode {split!r} (iid | non-iid)")
    frames = split_registries(real, registries, split, seed=seed,  # type: ignore[arg-type]
                              by=schema.partition)
    return schema, frames, {"dataset": dataset, "split": split, "registries": registries}

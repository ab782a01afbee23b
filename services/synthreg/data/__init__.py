"""synthreg.data: bundled datasets, the agreed schema and its validation,
the registry splitter and canonical content hashing."""

from synthreg.data.datasets import DATASETS, UnknownDatasetError, dataset_schema, load_dataset
from synthreg.data.hashing import UnhashableError, canonical_bytes, sha256_hex
from synthreg.data.schema import (
    ColumnSpec,
    MalformedCSVError,
    MissingColumnError,
    MissingValueError,
    OutOfRangeError,
    Schema,
    SchemaFormatError,
    SchemaValidationError,
    UnexpectedColumnError,
    UnknownCategoryError,
    WrongTypeError,
    load_registry_csv,
    validate,
)
from synthreg.data.split import SplitError, split_registries

__all__ = [
    "DATASETS",
    "ColumnSpec",
    "MalformedCSVError",
    "MissingColumnError",
    "MissingValueError",
    "OutOfRangeError",
    "Schema",
    "SchemaFormatError",
    "SchemaValidationError",
    "SplitError",
    "UnexpectedColumnError",
    "UnhashableError",
    "UnknownCategoryError",
    "UnknownDatasetError",
    "WrongTypeError",
    "canonical_bytes",
    "dataset_schema",
    "load_dataset",
    "load_registry_csv",
    "sha256_hex",
    "split_registries",
    "validate",
]

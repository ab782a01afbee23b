"""synthreg.data: bundled datasets, the agreed schema and its validation,
reading a registry's CSV, drafting a schema from data, the registry splitter
and canonical content hashing."""

from synthreg.data.csvload import (
    DEFAULT_MIN_ROWS,
    CSVCheck,
    MinimumRowsError,
    RawCSV,
    check_csv,
    load_csv,
    read_raw_csv,
)
from synthreg.data.datasets import DATASETS, UnknownDatasetError, dataset_schema, load_dataset
from synthreg.data.hashing import UnhashableError, canonical_bytes, sha256_hex
from synthreg.data.infer import SchemaInferenceError, infer_schema, infer_schema_csv, render_schema_yaml
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
    validation_errors,
)
from synthreg.data.split import SplitError, split_registries

__all__ = [
    "DATASETS",
    "DEFAULT_MIN_ROWS",
    "CSVCheck",
    "ColumnSpec",
    "MalformedCSVError",
    "MinimumRowsError",
    "MissingColumnError",
    "MissingValueError",
    "OutOfRangeError",
    "RawCSV",
    "Schema",
    "SchemaFormatError",
    "SchemaInferenceError",
    "SchemaValidationError",
    "SplitError",
    "UnexpectedColumnError",
    "UnhashableError",
    "UnknownCategoryError",
    "UnknownDatasetError",
    "WrongTypeError",
    "canonical_bytes",
    "check_csv",
    "dataset_schema",
    "infer_schema",
    "infer_schema_csv",
    "load_csv",
    "load_dataset",
    "load_registry_csv",
    "read_raw_csv",
    "render_schema_yaml",
    "sha256_hex",
    "split_registries",
    "validate",
    "validation_errors",
]

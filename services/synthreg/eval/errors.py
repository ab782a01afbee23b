"""Typed failures of the evaluation package.

Raised by `synthreg.eval` functions and caught at the edge (`synthreg report`,
`bench/quality.py`), which turn them into one readable line instead of a
traceback. Each error carries the details needed to fix the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class EvalError(Exception):
    """Base class of every evaluation failure."""


class InputFileError(EvalError):
    """An input file (synthetic CSV, real CSV, history JSON) is missing or unreadable."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read {path}: {reason}")


class SchemaMismatchError(EvalError):
    """A frame's columns do not match the agreed schema.

    `missing` are schema columns absent from the frame, `extra` are frame
    columns the schema does not know; `frame` names which input is wrong.
    """

    def __init__(self, frame: str, missing: Sequence[str], extra: Sequence[str]) -> None:
        self.frame = frame
        self.missing = tuple(missing)
        self.extra = tuple(extra)
        parts = []
        if self.missing:
            parts.append(f"missing columns {list(self.missing)}")
        if self.extra:
            parts.append(f"unknown columns {list(self.extra)}")
        super().__init__(f"{frame} data does not match the schema: {'; '.join(parts)}")


class ColumnTypeError(EvalError):
    """A numerical column holds values that cannot be read as numbers."""

    def __init__(self, frame: str, column: str, row: int, value: object) -> None:
        self.frame = frame
        self.column = column
        self.row = row
        self.value = value
        super().__init__(
            f"{frame} data, column {column!r}, row {row}: {value!r} is not a number"
        )


class EmptyDataError(EvalError):
    """A frame has too few rows to evaluate anything."""

    def __init__(self, frame: str, rows: int, needed: int) -> None:
        self.frame = frame
        self.rows = rows
        self.needed = needed
        super().__init__(f"{frame} data has {rows} rows, at least {needed} are needed")


class TargetError(EvalError):
    """No usable utility target: the column is absent or has a single class."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"utility target {target!r}: {reason}")


class HistoryFormatError(EvalError):
    """A training history does not have the expected per-round loss records."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"training history not understood: {reason}")


class HoldoutOverlapError(EvalError):
    """The 'holdout' rows are (mostly) also in the real training rows, so they are no holdout."""

    def __init__(self, overlapping: int, holdout_rows: int) -> None:
        self.overlapping = overlapping
        self.holdout_rows = holdout_rows
        super().__init__(
            f"{overlapping} of {holdout_rows} holdout rows also occur in the real data; "
            "pass the real rows without the holdout"
        )

"""Canonical byte encodings and SHA-256 content hashes of vectors, batches and frames.

Who calls: the step and aggregation clients (:mod:`synthreg.chain`), the trail
recorder (:mod:`synthreg.trail.record`), :func:`synthreg.secagg.average_sha256`
and the CLIs: fake batches, real batches, feedback and weight vectors are stored
in the content-addressed workspace as :func:`array_bytes`, and the ledger
records :func:`array_sha256` of them — one form, so the same weights have one
hash everywhere (workspace name, ledger record, agreed average). The same
content gives the same bytes in every process and on every little- or
big-endian machine.

Canonical form of an array (vector or batch): its values as float32, little
endian, C order — no header. Shapes are not part of the content: the records
and the step context carry them (a (3, 4) and a (4, 3) array of the same values
hash alike). Values are hashed as they are after the float32 cast (``-0.0`` and
``0.0`` differ, NaN payloads matter): callers hash what they store. A DataFrame
(``SRF1``) is encoded column by column (name, dtype kind, values: numbers as
little-endian float64/int64, text as length-prefixed UTF-8, missing as a
marker), with the row count first; the index is not part of the content.

What fails when: :class:`UnhashableError` for object columns holding values that
are neither text nor numbers, or for arrays that are not numeric (object,
complex, text).
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is only needed for the type; tensors are duck-typed
    import torch

_FRAME_MAGIC = b"SRF1"


class UnhashableError(TypeError):
    """The value has no canonical byte encoding here."""


def array_bytes(array: np.ndarray | torch.Tensor) -> bytes:
    """Canonical bytes of a numeric array or CPU tensor: float32, little endian, C order."""
    if hasattr(array, "detach"):  # torch.Tensor
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise UnhashableError(f"cannot hash array of dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype="<f4").tobytes()


def array_sha256(array: np.ndarray | torch.Tensor) -> str:
    """SHA-256 hex of :func:`array_bytes`: the workspace name and ledger hash of the array."""
    return hashlib.sha256(array_bytes(array)).hexdigest()


def frame_bytes(df: pd.DataFrame) -> bytes:
    """Canonical bytes of a DataFrame's content (column names, kinds, values)."""
    chunks = [_FRAME_MAGIC, struct.pack("<QQ", len(df), df.shape[1])]
    for name in df.columns:
        col = df[name]
        chunks.append(_text(str(name)))
        if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_integer_dtype(col.dtype):
            if col.isna().any():
                chunks.append(b"f")
                chunks.append(col.astype("float64").to_numpy(dtype="<f8").tobytes())
            else:
                chunks.append(b"i")
                chunks.append(col.to_numpy(dtype="<i8").tobytes())
        elif pd.api.types.is_float_dtype(col.dtype):
            chunks.append(b"f")
            chunks.append(col.to_numpy(dtype="<f8").tobytes())
        else:
            chunks.append(b"o")
            chunks.extend(_object_value(v, str(name)) for v in col.tolist())
    return b"".join(chunks)


def _text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<I", len(raw)) + raw


def _object_value(value: Any, column: str) -> bytes:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return b"N"
    if isinstance(value, str):
        return b"s" + _text(value)
    if isinstance(value, (bool, np.bool_)):
        return b"i" + struct.pack("<q", int(value))
    if isinstance(value, (int, np.integer)):
        return b"i" + struct.pack("<q", int(value))
    if isinstance(value, (float, np.floating)):
        return b"f" + struct.pack("<d", float(value))
    raise UnhashableError(f"column {column!r}: cannot hash value of type {type(value).__name__}")


def canonical_bytes(obj: np.ndarray | torch.Tensor | pd.DataFrame | bytes) -> bytes:
    """Dispatch: DataFrame -> :func:`frame_bytes`, array/tensor -> :func:`array_bytes`,
    bytes -> unchanged."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    if isinstance(obj, pd.DataFrame):
        return frame_bytes(obj)
    return array_bytes(obj)


def sha256_hex(obj: np.ndarray | torch.Tensor | pd.DataFrame | bytes) -> str:
    """SHA-256 hex digest of :func:`canonical_bytes` of ``obj``."""
    return hashlib.sha256(canonical_bytes(obj)).hexdigest()

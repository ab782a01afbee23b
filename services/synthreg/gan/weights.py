"""Model weights <-> flat float32 vectors (the only form weights travel in).

Who calls: FedAvg in :mod:`synthreg.gan.federated`, the merger app (secure
aggregation masks a flat vector), the audit trail (CKKS-encrypts it), the CLI
(writes the generator vector to ``generator.npz``). No pickles anywhere.

Layout: the module's state-dict entries in sorted key order, each flattened in
C order and concatenated; :func:`vector_layout` lists (key, shape) so a reader
can check it. Only floating-point entries are supported (the models here have no
integer buffers); values are cast to float32.

What fails when: :class:`WeightVectorLengthError` when a vector's length does not
match the module; :class:`NonFiniteWeightsError` when a vector (or a module)
contains NaN/Inf; :class:`UnsupportedStateError` for non-float state entries;
:class:`WeightVectorShapeError` for a vector that is not 1-D float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class WeightError(ValueError):
    """Base of weight-vector conversion failures."""


class WeightVectorLengthError(WeightError):
    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"weight vector has {got} values, module needs {expected}")


class WeightVectorShapeError(WeightError):
    def __init__(self, shape: tuple[int, ...], dtype: str) -> None:
        self.shape = shape
        self.dtype = dtype
        super().__init__(f"weight vector must be 1-D float32, got shape {shape} dtype {dtype}")


class NonFiniteWeightsError(WeightError):
    def __init__(self, count: int, first_index: int) -> None:
        self.count = count
        self.first_index = first_index
        super().__init__(f"{count} NaN/Inf weights (first at index {first_index})")


class UnsupportedStateError(WeightError):
    def __init__(self, key: str, dtype: str) -> None:
        self.key = key
        self.dtype = dtype
        super().__init__(f"state entry {key!r} has non-float dtype {dtype}")


def vector_layout(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every state-dict entry, in vector order (sorted keys)."""
    state = module.state_dict()
    layout = []
    for key in sorted(state):
        tensor = state[key]
        if not tensor.is_floating_point():
            raise UnsupportedStateError(key, str(tensor.dtype))
        layout.append((key, tuple(tensor.shape)))
    return layout


def _check_finite(vec: np.ndarray) -> None:
    bad = ~np.isfinite(vec)
    if bad.any():
        raise NonFiniteWeightsError(int(bad.sum()), int(np.flatnonzero(bad)[0]))


def state_dict_to_vector(module: nn.Module) -> np.ndarray:
    """Flatten ``module``'s state dict into a new float32 vector (sorted-key order)."""
    state = module.state_dict()
    layout = vector_layout(module)
    if not layout:
        return np.zeros(0, dtype=np.float32)
    vec = np.concatenate(
        [state[key].detach().cpu().to(torch.float32).reshape(-1).numpy() for key, _ in layout]
    ).astype(np.float32, copy=False)
    _check_finite(vec)
    return vec


def vector_to_state_dict(module: nn.Module, vec: np.ndarray) -> dict[str, torch.Tensor]:
    """Load flat ``vec`` into ``module`` (in place) and return the state dict loaded.

    The vector is validated completely before anything is loaded, so a bad vector
    leaves the module unchanged.
    """
    arr = np.asarray(vec)
    if arr.ndim != 1 or arr.dtype != np.float32:
        raise WeightVectorShapeError(tuple(arr.shape), str(arr.dtype))
    layout = vector_layout(module)
    expected = sum(int(np.prod(shape, dtype=np.int64)) for _, shape in layout)
    if arr.shape[0] != expected:
        raise WeightVectorLengthError(expected, int(arr.shape[0]))
    _check_finite(arr)
    state: dict[str, torch.Tensor] = {}
    pos = 0
    for key, shape in layout:
        size = int(np.prod(shape, dtype=np.int64))
        state[key] = torch.from_numpy(arr[pos:pos + size].copy()).reshape(shape)
        pos += size
    module.load_state_dict(state, strict=True)
    return state

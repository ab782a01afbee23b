"""Fixed-point encoding of weighted float vectors into Z/2^64 (SPEC "Fixed point").

Who calls: :meth:`synthreg.secagg.party.Party.mask` (:func:`encode`) and
:mod:`synthreg.secagg.unmask` (:func:`decode`). Pure numpy, no secrets.

q(x) = round(x * 2^scale) (round half to even) as int64 two's complement, viewed as
uint64 so that numpy's uint64 arithmetic wraps mod 2^64. Inputs are rejected if
any element is NaN/Inf (:class:`NonFiniteValueError`) or if ``|w*x| >=
2^(62-scale) / N`` (:class:`FixedPointRangeError`): then the sum over at most N
parties stays below 2^62 in magnitude and decodes without wrap-around. The
encoding error per element is at most 2^-(scale+1), so a sum over N parties is
within N * 2^-(scale+1) of the exact sum of the weighted inputs.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from synthreg.secagg.errors import FixedPointRangeError, NonFiniteValueError, VectorShapeError, WeightError
from synthreg.secagg.params import Params

__all__ = ["check_weight", "decode", "encode", "range_bound"]


def range_bound(params: Params) -> float:
    """Exclusive bound on ``|w*x|`` per element: ``2^(62-scale) / N``."""
    return math.ldexp(1.0, 62 - params.scale_bits) / params.n


def check_weight(msp: str, weight: float) -> float:
    """Return ``weight`` as a float; raise :class:`WeightError` unless finite and > 0."""
    if isinstance(weight, bool) or not isinstance(weight, int | float | np.floating | np.integer):
        raise WeightError(msp, f"not a number: {weight!r}")
    w = float(weight)
    if not math.isfinite(w) or w <= 0.0:
        raise WeightError(msp, f"must be finite and > 0, got {w!r}")
    return w


def encode(values: npt.NDArray[np.floating], params: Params, weight: float = 1.0) -> npt.NDArray[np.uint64]:
    """q(weight * values) as uint64.

    ``values`` must be a 1-D float32/float64 array of length ``params.vector_len``
    (:class:`VectorShapeError` otherwise). The product is formed in float64.
    """
    if not isinstance(values, np.ndarray):
        raise VectorShapeError("vector type", type(values).__name__, "numpy.ndarray")
    if values.dtype not in (np.float32, np.float64):
        raise VectorShapeError("vector dtype", str(values.dtype), "float32 or float64")
    if values.ndim != 1:
        raise VectorShapeError("vector ndim", values.ndim, 1)
    if values.shape[0] != params.vector_len:
        raise VectorShapeError("vector length", values.shape[0], params.vector_len)
    scaled = values.astype(np.float64) * float(weight)
    finite = np.isfinite(scaled)
    if not finite.all():
        # A finite x times a huge finite weight may overflow; name the input either way.
        raise NonFiniteValueError(int(np.argmin(finite)))
    bound = range_bound(params)
    too_big = np.abs(scaled) >= bound
    if too_big.any():
        i = int(np.argmax(too_big))
        raise FixedPointRangeError(i, float(scaled[i]), bound)
    fixed = np.rint(np.ldexp(scaled, params.scale_bits)).astype(np.int64)
    return fixed.view(np.uint64)


def decode(acc: npt.NDArray[np.uint64], scale_bits: int) -> npt.NDArray[np.float64]:
    """Inverse of :func:`encode` for a (sum of) encoded vectors: int64 / 2^scale as float64."""
    if acc.dtype != np.uint64:
        raise VectorShapeError("accumulator dtype", str(acc.dtype), "uint64")
    return np.ldexp(acc.view(np.int64).astype(np.float64), -scale_bits)

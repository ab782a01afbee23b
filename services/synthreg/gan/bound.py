"""The update bound (DESIGN.md §4; issue 10, attack 2 "Poisoning").

Averaging alone bounds nothing: honest updates of 0.1 and -0.1 and one of 3.5e8
average to 1.17e8, and neither the mergers nor the auditor could tell. So the run
config bounds each registry's *update*: the DELTA ``w - w_prev`` between its
[G ‖ D] weight vector and the previous round's agreed average (round 0: the common
initial weights every registry builds from the run seed, :func:`initial_vector`),
the quantity FedAvg averages. ``TrainConfig.max_update_norm`` = C bounds its L2
norm (``None``: unbounded).

Who calls:

* :func:`clip_update`, before masking, by every merger app on its own registry's
  vector (``w' = w_prev + delta * min(1, C / ||delta||)``) and by the
  single-process path (:func:`synthreg.gan.federated.train_federated`) on every
  registry's vector before averaging. A delta within the bound is returned
  untouched (same bits), so honest runs are not changed at all, and a clipped one
  is computed the same way on both paths (float64, then float32).
* :func:`check_bound` on the agreed average, by every merger after the agreement
  (and by ``train_federated`` after its average): a mean of clipped updates lies
  within C of ``w_prev`` (convexity), so ``||avg - w_prev|| > C + slack`` proves
  some survivor did not clip; secure aggregation hides which one.
* :func:`check_bound` on each registry's decrypted CKKS audit copy, by the auditor
  (:mod:`synthreg.trail.verify`) on audited rounds: names the registry.

What fails when: :class:`UpdateBoundError` (round, norm, bound, and the registry
when known); ``ValueError`` for vectors of different lengths. Non-finite vectors
are left to the fixed-point encoder, which refuses them
(:class:`synthreg.secagg.errors.NonFiniteValueError`).

Slack (:func:`slack`): the clipped vector and the average are float32, rounded
relative to ``||w_prev|| + C`` (2^-20 covers both roundings with margin), plus a
per-coordinate error of the transport: 2^-31 for the secure sum's fixed point
(2^-33 per coordinate at scale 2^32), the auditor's CKKS tolerance for decrypted
copies.
"""

from __future__ import annotations

import math

import numpy as np

from synthreg.gan.models import ModelConfig, build_models
from synthreg.gan.weights import state_dict_to_vector

__all__ = ["FIXED_POINT_ERROR", "UpdateBoundError", "check_bound", "clip_update", "initial_vector",
           "slack", "update_norm"]

FIXED_POINT_ERROR = 2.0**-31
"""Per-coordinate error of an average agreed by secure aggregation (scale 2^32), with margin."""


class UpdateBoundError(ValueError):
    """An update (``registry`` named) or an agreed average (``registry`` None) moved
    further from the previous average than the run's ``max_update_norm`` allows."""

    def __init__(self, rnd: int, norm: float, bound: float, registry: str | None = None) -> None:
        self.round, self.norm, self.bound, self.registry = rnd, norm, bound, registry
        if registry is None:
            what = (f"the agreed average moved {norm:.6g} from the previous one, beyond the update bound "
                    f"{bound:g}: a survivor did not clip its update")
        else:
            what = f"{registry}'s update has norm {norm:.6g}, beyond the update bound {bound:g}"
        super().__init__(f"round {rnd}: {what}")


def initial_vector(output_dim: int, model: ModelConfig, seed: int, generator_only: bool = False) -> np.ndarray:
    """[G ‖ D] (G alone with ``generator_only``) as every registry builds it from the
    run seed: ``w_prev`` of round 0."""
    gen, dis = build_models(output_dim, model, seed)
    if generator_only:
        return state_dict_to_vector(gen)
    return np.concatenate([state_dict_to_vector(gen), state_dict_to_vector(dis)])


def update_norm(vector: np.ndarray, prev: np.ndarray) -> float:
    """``||vector - prev||`` (L2, in float64)."""
    if vector.shape != prev.shape:
        raise ValueError(f"update has shape {vector.shape}, the previous average {prev.shape}")
    return float(np.linalg.norm(vector.astype(np.float64) - prev.astype(np.float64)))


def clip_update(vector: np.ndarray, prev: np.ndarray, max_norm: float | None) -> np.ndarray:
    """``vector`` with its delta from ``prev`` scaled to norm at most ``max_norm``
    (float32). Returned unchanged when within the bound, unbounded (None) or not
    finite (masking refuses it)."""
    if max_norm is None:
        return vector
    norm = update_norm(vector, prev)
    if not math.isfinite(norm) or norm <= max_norm:
        return vector
    p = prev.astype(np.float64)
    clipped: np.ndarray = (p + (vector.astype(np.float64) - p) * (max_norm / norm)).astype(np.float32)
    return clipped


def slack(max_norm: float, prev: np.ndarray, per_coordinate: float = FIXED_POINT_ERROR) -> float:
    """What rounding may add to a norm within ``max_norm`` (see the module doc)."""
    return 2.0**-20 * (float(np.linalg.norm(prev.astype(np.float64))) + max_norm) \
        + math.sqrt(prev.size) * per_coordinate


def check_bound(vector: np.ndarray, prev: np.ndarray, max_norm: float | None, rnd: int,
                registry: str | None = None, per_coordinate: float = FIXED_POINT_ERROR) -> float:
    """``||vector - prev||``, checked against ``max_norm`` + :func:`slack`; raises
    :class:`UpdateBoundError` naming round ``rnd`` (and ``registry``, for one
    registry's update) beyond it. Unbounded (None): only returns the norm."""
    norm = update_norm(vector, prev)
    if max_norm is not None and not norm <= max_norm + slack(max_norm, prev, per_coordinate):
        raise UpdateBoundError(rnd, norm, max_norm, registry)
    return norm

"""The training configuration (:class:`TrainConfig`): everything that determines a run,
agreed on the ledger in the run document and recorded with its results.

Imported without torch: the ledger's run documents (:mod:`synthreg.chain.runs`) and the
`synthreg run` / `registry` commands validate a config without loading the models. The
methods that build model or optimiser settings import their modules when called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from synthreg.data.schema import Schema

if TYPE_CHECKING:
    import torch

    from synthreg.gan.dp import DPSettings
    from synthreg.gan.models import ModelConfig
    from synthreg.gan.step import OptimConfig

DEFAULT_BINS = 64
"""Default histogram bins per numeric column of the agreed encoder statistics."""


class TrainConfigError(ValueError):
    """The training configuration is inconsistent."""


NON_IID_LEVERS: Mapping[str, Any] = MappingProxyType({"averaged": "generator", "lr_d": 1e-3})
"""TrainConfig fields for registries that differ (issue 12, part 1), as the demo and
``bench/quality.py --non-iid`` run them: local critics and a critic learning rate of
1e-3. Measured there (3 seeds, mean federated quality, update bound on): rotterdam by
period 0.900 (defaults 0.873, centralised 0.907), nwtco by trial 0.907 (0.856, 0.913),
colon by tumour differentiation 0.837 (0.831, 0.884: one category per registry, where
averaged critics do better, 0.853), and 0.891 with the generator conditioned on that column
(``condition_on``, set per split: it names a column of the data). Not the TrainConfig defaults: a run document
without these fields keeps meaning what it meant when it was agreed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded with its results).

    Defaults are the demo size: 3 registries x 120 rounds x 10 local iterations
    of batch 200 (3,600 steps) took 75 s on this 2-core machine with 1 torch
    thread while other jobs shared the cores. Short rounds matter on non-IID
    splits: with K = 40 (30 rounds, same steps) the averaged generator
    collapsed the per-registry `year` periods (sd 1.8 vs 3.0 real; SDMetrics
    quality 0.854), K = 10 gave sd 2.7, quality 0.891; K = 5 was no better.

    ``max_update_norm`` bounds the L2 norm of each registry's update delta per
    round (:mod:`synthreg.gan.bound`; ``None``: unbounded). Measured on the demo
    (85,527 weights, Rotterdam non-IID split, 120 rounds, seeds 0 and 1) honest
    deltas had norms 0.35-0.50 (median 0.38, largest in the first rounds);
    an Adam step moves each weight by about lr, so about lr_g * local_iters *
    sqrt(#weights) = 0.58 bounds them. The default 1.0 leaves honest demo runs
    unclipped (bit for bit) with a 2x margin; raise it with local_iters, the
    learning rates or the model size.

    Differential privacy (issue 12, :mod:`synthreg.gan.dp`): ``dp_epsilon`` and
    ``dp_delta`` are each registry's budget (None, the default: no DP, training
    unchanged bit for bit); with them ``dp_noise_multiplier`` (sigma) and
    ``dp_sample_rate`` (q, each record's chance to be in a step's real batch) are
    required, ``dp_max_grad_norm`` is the per-record clipping bound C, and ``pac``
    must be 1. The run trains :meth:`trained_rounds` rounds: ``rounds``, capped at
    the last round whose epsilon (Opacus RDP, :mod:`synthreg.gan.accountant`) stays
    within the budget — the same for every registry, since sigma, q and the step
    count are the run's.

    ``averaged`` (issue 12, part 1) says what FedAvg shares: ``"generator+discriminator"``
    (default, [G ‖ D]) or ``"generator"``: every discriminator stays with its
    registry (never averaged, never in secure aggregation, an audit copy or a model
    bundle) and only G is averaged. Measured on three non-IID splits (bench/quality.py
    --non-iid) local critics closed most of the gap to centralised training: each
    critic keeps judging its own registry's records instead of an average of
    critics that fits none of them.

    ``condition_on`` (issue 12, part 1) names a categorical column the generator is
    conditioned on (:mod:`synthreg.gan.condition`), typically the one registries
    differ by; its level counts join the agreed statistics and sampling draws it at
    the consortium's frequencies. Not with DP: each registry would draw conditions
    at its own frequencies, a use of its records outside the DP accounting.
    """

    rounds: int = 120
    local_iters: int = 10
    batch_size: int = 200
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 1e-6
    gp_weight: float = 10.0
    noise_dim: int = 64
    gen_dims: tuple[int, ...] = (128, 128)
    dis_dims: tuple[int, ...] = (128, 128)
    pac: int = 10
    tau: float = 0.2
    seed: int = 0
    weighting: Literal["uniform", "size"] = "uniform"
    encoder_stats: Literal["histogram", "schema"] = "histogram"
    bins: int = DEFAULT_BINS
    num_threads: int | None = None
    max_update_norm: float | None = 1.0
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    dp_noise_multiplier: float | None = None
    dp_sample_rate: float | None = None
    dp_max_grad_norm: float = 1.0
    averaged: Literal["generator+discriminator", "generator"] = "generator+discriminator"
    condition_on: str | None = None

    def __post_init__(self) -> None:
        for name in ("rounds", "local_iters", "batch_size", "pac", "noise_dim", "bins"):
            if getattr(self, name) < 1:
                raise TrainConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.pac:
            raise TrainConfigError(f"batch_size {self.batch_size} not a multiple of pac {self.pac}")
        if self.weighting not in ("uniform", "size"):
            raise TrainConfigError(f"unknown weighting {self.weighting!r}")
        if self.averaged not in ("generator+discriminator", "generator"):
            raise TrainConfigError(f"unknown averaged {self.averaged!r} (generator+discriminator | generator)")
        if self.encoder_stats not in ("histogram", "schema"):
            raise TrainConfigError(f"unknown encoder_stats {self.encoder_stats!r}")
        if self.max_update_norm is not None and (
                isinstance(self.max_update_norm, bool) or not isinstance(self.max_update_norm, int | float)
                or not math.isfinite(self.max_update_norm) or self.max_update_norm <= 0):
            raise TrainConfigError(f"max_update_norm must be a finite number > 0 or null, "
                                   f"got {self.max_update_norm!r}")
        if self.max_update_norm is not None:
            object.__setattr__(self, "max_update_norm", float(self.max_update_norm))
        if self.condition_on is not None and (not isinstance(self.condition_on, str) or not self.condition_on):
            raise TrainConfigError(f"condition_on must be a column name or null, got {self.condition_on!r}")
        self._check_dp()

    def _check_dp(self) -> None:
        names = ("dp_epsilon", "dp_delta", "dp_noise_multiplier", "dp_sample_rate")
        given = [n for n in names if getattr(self, n) is not None]
        if not given:
            return
        if len(given) != len(names):
            raise TrainConfigError(f"differential privacy needs all of {list(names)}, got only {given}")
        for name in (*names, "dp_max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise TrainConfigError(f"{name} must be a finite number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.dp_delta < 1 or not self.dp_sample_rate <= 1:  # type: ignore[operator]
            raise TrainConfigError(f"dp_delta must be < 1 and dp_sample_rate <= 1, "
                                   f"got {self.dp_delta}, {self.dp_sample_rate}")
        if self.pac != 1:
            raise TrainConfigError(f"differential privacy needs pac = 1 (one record per critic input), got {self.pac}")
        if self.condition_on is not None:
            raise TrainConfigError("differential privacy and condition_on do not combine: each registry would draw "
                                   "the generator's conditions at its own records' frequencies, outside the DP "
                                   "accounting")
        from synthreg.gan.accountant import PrivacyBudgetError

        try:
            self.trained_rounds()
        except PrivacyBudgetError as exc:
            raise TrainConfigError(str(exc)) from exc

    @property
    def dp(self) -> DPSettings | None:
        """The DP-SGD mechanism's parameters; None without a privacy budget."""
        if self.dp_epsilon is None:
            return None
        from synthreg.gan.dp import DPSettings

        assert self.dp_noise_multiplier is not None and self.dp_sample_rate is not None
        return DPSettings(self.dp_noise_multiplier, self.dp_max_grad_norm, self.dp_sample_rate)

    def trained_rounds(self) -> int:
        """``rounds``, capped by the privacy budget (the rounds whose epsilon stays
        within ``dp_epsilon``); raises PrivacyBudgetError if not one round fits."""
        if self.dp_epsilon is None:
            return self.rounds
        from synthreg.gan.accountant import rounds_within_budget

        assert self.dp_delta is not None and self.dp_noise_multiplier is not None and self.dp_sample_rate is not None
        return rounds_within_budget(self.dp_epsilon, self.dp_delta, self.dp_noise_multiplier, self.dp_sample_rate,
                                    self.local_iters, self.rounds)

    def epsilon_after(self, steps: int) -> float:
        """Each registry's epsilon after ``steps`` discriminator steps (0.0 without DP)."""
        if self.dp_epsilon is None:
            return 0.0
        from synthreg.gan.accountant import epsilon_spent

        assert self.dp_delta is not None and self.dp_noise_multiplier is not None and self.dp_sample_rate is not None
        return epsilon_spent(self.dp_noise_multiplier, self.dp_sample_rate, steps, self.dp_delta)

    def model_config(self, schema: Schema | None = None) -> ModelConfig:
        """The architecture; a conditional generator's input width needs the ``schema``
        (:class:`TrainConfigError` without it, or for a column that cannot condition)."""
        from synthreg.gan.models import ModelConfig

        return ModelConfig(self.noise_dim, self.gen_dims, self.dis_dims, self.pac, self.tau,
                           self.condition_width(schema))

    def condition_width(self, schema: Schema | None) -> int:
        """Width of the generator's condition (0 without ``condition_on``)."""
        if self.condition_on is None:
            return 0
        if schema is None:
            raise TrainConfigError(f"condition_on={self.condition_on!r}: the model's shape needs the schema")
        from synthreg.gan.condition import ConditionError, condition_width

        try:
            return condition_width(schema, self.condition_on)
        except ConditionError as exc:
            raise TrainConfigError(str(exc)) from exc

    @property
    def levels_of(self) -> tuple[str, ...]:
        """Categorical columns whose level counts join the agreed statistics."""
        return () if self.condition_on is None else (self.condition_on,)

    def optim_config(self) -> OptimConfig:
        from synthreg.gan.step import OptimConfig

        return OptimConfig(self.lr_g, self.lr_d, self.betas, self.weight_decay, self.gp_weight)

    def to_dict(self) -> dict[str, object]:
        """The fields as a dict; without a privacy budget the ``dp_*`` fields are left
        out (so configs, run specs and bundles of non-DP runs are as before)."""
        raw = asdict(self)
        if self.dp_epsilon is None:
            raw = {k: v for k, v in raw.items() if not k.startswith("dp_")}
        if self.averaged == "generator+discriminator":  # the default: left out, as before the field existed
            del raw["averaged"]
        if self.condition_on is None:  # likewise
            del raw["condition_on"]
        return raw

    @property
    def generator_only(self) -> bool:
        """True when only the generator is averaged (discriminators stay local)."""
        return self.averaged == "generator"

    def shared_vector(self, generator: torch.nn.Module, discriminator: torch.nn.Module) -> np.ndarray:
        """The flat float32 vector a registry contributes to FedAvg: [G ‖ D], or G alone."""
        from synthreg.gan.weights import state_dict_to_vector

        g = state_dict_to_vector(generator)
        return g if self.generator_only else np.concatenate([g, state_dict_to_vector(discriminator)])

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (e.g. from a model bundle's JSON): lists become
        tuples; unknown keys or bad values raise :class:`TrainConfigError`."""
        if not isinstance(raw, Mapping):
            raise TrainConfigError(f"config must be a mapping, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TrainConfigError(f"unknown config keys {unknown}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        try:
            return cls(**values)
        except TypeError as exc:
            raise TrainConfigError(f"bad config: {exc}") from exc


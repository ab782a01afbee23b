"""In-process federated GAN training (FedAvg), centralised and local-only baselines.

Who calls: the CLI ``synthreg train-local``, ``bench/quality.py``, and the
single-process ledger path (its ``step`` and ``aggregate`` hooks; tests and
benchmarks). The registries' apps (:mod:`synthreg.apps`) run the same
algorithm with the step API split across processes and reproduce it bit for
bit.

Algorithm (per registry r = 0..N-1, all in this process, sequentially):

* everybody validates its frame against the agreed schema;
* the encoder is built from the schema plus the element-wise sum of the
  registries' schema-grid histograms (:class:`EncoderStats`; ``encoder_stats =
  "schema"`` uses schema ranges only) — one encoder, identical everywhere;
* every G and D starts from the same seeded initialisation;
* each round: every registry runs ``local_iters`` iterations of the separable
  step (G makes a fake batch -> D updates and returns feedback -> G applies it);
  then G vectors and D vectors are averaged (FedAvg) and every registry loads
  the averages. ``weighting="uniform"`` (default) is the plain mean that secure
  aggregation on the ledger computes (sum / |U|); ``"size"`` weights by rows.
  Adam moments stay local (never shared, like the data).
* before averaging, each registry's update (its vector minus the previous
  average; round 0: minus the common initial weights) is clipped to
  ``max_update_norm`` and the average is checked against that bound
  (:mod:`synthreg.gan.bound`), as the merger apps do around secure aggregation.

N = 1 gives local-only training; :func:`train_centralised` trains the same model
on pooled data. Real data never leaves its registry object; only weight vectors
and the histogram sum are combined.

What fails when: schema errors from :func:`synthreg.data.schema.validate`;
:class:`TrainConfigError` for inconsistent settings (batch not a multiple of
pac, no registries, non-positive counts);
:class:`synthreg.gan.bound.UpdateBoundError` when an ``aggregate`` returns an
average beyond the update bound.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthreg.data.schema import Schema, validate
from synthreg.gan.bound import check_bound, clip_update
from synthreg.gan.condition import Condition
from synthreg.gan.config import NON_IID_LEVERS as NON_IID_LEVERS
from synthreg.gan.config import TrainConfig as TrainConfig
from synthreg.gan.config import TrainConfigError as TrainConfigError
from synthreg.gan.dp import make_discriminator
from synthreg.gan.encoder import EncoderStats, TabularEncoder
from synthreg.gan.models import Generator, build_models
from synthreg.gan.sampling import sample_records
from synthreg.gan.step import (
    DiscriminatorSide,
    DStepResult,
    GeneratorSide,
    RealBatchSampler,
    derive_seed,
)
from synthreg.gan.weights import state_dict_to_vector, vector_to_state_dict


@dataclass(frozen=True)
class RoundLoss:
    """Mean losses of one registry over the local iterations of one round."""

    round: int
    registry: int
    d_loss: float
    g_loss: float


@dataclass
class FederatedResult:
    """Outcome of a run: the agreed final generator and the loss history."""

    encoder: TabularEncoder
    config: TrainConfig
    generator_state: dict[str, torch.Tensor]
    discriminator_state: dict[str, torch.Tensor]
    history: list[RoundLoss]
    registry_sizes: list[int]
    wall_seconds: float
    epsilon: float | None = None
    """each registry's spent epsilon (at ``config.dp_delta``); None without DP"""
    _generator: Generator | None = field(default=None, repr=False)

    def generator(self) -> Generator:
        """A Generator module holding :attr:`generator_state` (built once)."""
        if self._generator is None:
            gen, _ = build_models(self.encoder.output_dim, self.config.model_config(self.encoder.schema), 0)
            gen.load_state_dict(self.generator_state)
            gen.eval()
            self._generator = gen
        return self._generator

    def generator_vector(self) -> np.ndarray:
        return state_dict_to_vector(self.generator())

    def discriminator_vector(self) -> np.ndarray:
        """:attr:`discriminator_state` as a flat float32 vector (sorted state-dict keys)."""
        _, dis = build_models(self.encoder.output_dim, self.config.model_config(self.encoder.schema), 0)
        dis.load_state_dict(self.discriminator_state)
        return state_dict_to_vector(dis)

    def average_vector(self) -> np.ndarray:
        """[G ‖ D] of the final model (G alone when only G is averaged): the last
        round's average that every registry loaded (what secure aggregation hashes
        as ``average_sha256``)."""
        if self.config.generator_only:
            return self.generator_vector()
        return np.concatenate([self.generator_vector(), self.discriminator_vector()])

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` synthetic records in the schema's columns and dtypes (seeded);
        see :func:`synthreg.gan.sampling.sample_records`."""
        return sample_records(self.generator(), self.encoder, self.config, n, seed)

    def history_records(self) -> list[dict[str, float | int]]:
        """History as plain dicts (JSON / DataFrame friendly)."""
        return [asdict(h) for h in self.history]


def fedavg(vectors: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of flat float32 vectors, accumulated in float64 -> float32.

    Averaging identical vectors returns them bit-for-bit.
    """
    if not vectors:
        raise TrainConfigError("nothing to average")
    w = np.ones(len(vectors)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(vectors),) or (w < 0).any() or w.sum() <= 0:
        raise TrainConfigError(f"bad averaging weights {list(w)}")
    w = w / w.sum()
    acc = np.zeros(vectors[0].shape, dtype=np.float64)
    for wi, v in zip(w, vectors, strict=True):
        if v.shape != acc.shape:
            raise TrainConfigError(f"vector shapes differ: {v.shape} vs {acc.shape}")
        acc += wi * v.astype(np.float64)
    return acc.astype(np.float32)


@dataclass
class _Registry:
    index: int
    size: int
    g: GeneratorSide
    d: DiscriminatorSide
    real: RealBatchSampler


def build_encoder(frames: Sequence[pd.DataFrame], schema: Schema, config: TrainConfig,
                  secure_sum: Callable[[list[np.ndarray]], np.ndarray] | None = None) -> TabularEncoder:
    """The consortium encoder: schema + sum of registries' histograms (or schema only).

    ``secure_sum``, if given, sums the registries' flattened histograms without
    anyone seeing another's (e.g. secure aggregation over the ledger); by
    default they are summed in the clear. Both give the same encoder.
    """
    if config.encoder_stats == "schema":
        return TabularEncoder(schema)
    parts = [EncoderStats.from_frame(f, schema, config.bins, config.levels_of) for f in frames]
    if secure_sum is None:
        stats = EncoderStats.combine(parts)
    else:
        stats = parts[0].from_vector(secure_sum([p.to_vector() for p in parts]))
    return TabularEncoder(schema, stats)


def train_federated(
    registry_frames: Sequence[pd.DataFrame],
    schema: Schema,
    config: TrainConfig,
    progress: bool = True,
    encoder: TabularEncoder | None = None,
    on_round: RoundHook | None = None,
    aggregate: Aggregator | None = None,
    step: StepRunner | None = None,
    dp_seeds: Sequence[int] | None = None,
) -> FederatedResult:
    """Train one G/D pair per registry with K local iterations and FedAvg per round.

    ``encoder`` overrides the agreed encoder (e.g. to give local-only baselines the
    pooled statistics); by default :func:`build_encoder` is used. ``on_round``, if
    given, is called after every merge with the round index, each registry's
    pre-average weight vector (generator ‖ discriminator, float32, clipped to
    ``config.max_update_norm`` from the previous average) and the
    average every registry loaded — the audit trail records these.
    ``aggregate``, if given, computes that average instead of the in-process
    :func:`fedavg` (e.g. secure aggregation over the ledger,
    :func:`synthreg.chain.secagg.secure_average`); it receives the round index,
    the per-registry [G ‖ D] vectors and the averaging weights (None = uniform).
    ``step``, if given, runs each local iteration instead of the in-process
    G -> D -> G hand-over (e.g. :class:`synthreg.chain.steps.LedgerSteps`, which
    passes every batch and feedback through the workspace with its hash on the
    ledger); the registries then run their local iterations in parallel threads.
    With a privacy budget in ``config`` each discriminator trains by DP-SGD
    (:mod:`synthreg.gan.dp`) for :meth:`TrainConfig.trained_rounds` rounds, its
    sampling and noise seeded from ``dp_seeds[r]`` (each registry's secret; default:
    fresh random seeds, so a DP run is not reproducible unless they are given).
    """
    if not registry_frames:
        raise TrainConfigError("no registries")
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    start = time.perf_counter()
    frames = [validate(f, schema) for f in registry_frames]
    model_cfg, optim_cfg = config.model_config(schema), config.optim_config()
    enc = encoder if encoder is not None else build_encoder(frames, schema, config)

    rounds = config.trained_rounds()
    if config.dp is not None and dp_seeds is None:
        dp_seeds = [secrets.randbits(63) for _ in frames]
    registries: list[_Registry] = []
    for r, frame in enumerate(frames):
        gen, dis = build_models(enc.output_dim, model_cfg, config.seed)  # same init everywhere
        encoded = enc.encode(frame)
        condition = None if config.condition_on is None else Condition.local(enc, config.condition_on, encoded)
        d_side, real = make_discriminator(dis, optim_cfg, config.seed, r, encoded, config.dp,
                                          None if dp_seeds is None else dp_seeds[r],
                                          None if condition is None else (condition.start, condition.width))
        registries.append(
            _Registry(index=r, size=len(frame), g=GeneratorSide(gen, enc.output_info, config.tau, optim_cfg, condition),
                      d=d_side, real=real)
        )
    avg_weights = [float(reg.size) for reg in registries] if config.weighting == "size" else None
    prev = config.shared_vector(registries[0].g.generator, registries[0].d.discriminator)  # w_prev of round 0

    history: list[RoundLoss] = []
    bar = _progress_bar(progress)
    with bar:
        task = bar.add_task("training", total=rounds * len(registries))
        for rnd in range(rounds):

            def local(reg: _Registry, rnd: int = rnd) -> RoundLoss:
                d_sum = g_sum = 0.0
                for it in range(config.local_iters):
                    seed = derive_seed(config.seed, "noise", reg.index, rnd, it)
                    if step is None:
                        fake = reg.g.make_fake(config.batch_size, seed)
                        res = reg.d.step(fake.array, reg.real.sample_for(fake.array))
                        reg.g.apply_feedback(res.feedback)
                    else:
                        res = step(StepContext(reg.index, rnd, it, config.batch_size, seed), reg.g, reg.d, reg.real)
                    d_sum += res.d_loss
                    g_sum += res.g_loss
                return RoundLoss(rnd, reg.index, d_sum / config.local_iters, g_sum / config.local_iters)

            if step is None:
                losses = [local(reg) for reg in registries]
            else:
                # the registries' iterations wait on the ledger: run them side by side
                with ThreadPoolExecutor(max_workers=len(registries)) as pool:
                    losses = list(pool.map(local, registries))
            for loss in losses:
                history.append(loss)
                bar.update(task, advance=1, description=(
                    f"round {rnd + 1}/{rounds} reg {loss.registry} "
                    f"D {loss.d_loss:+.3f} G {loss.g_loss:+.3f}"))
            vectors, average = _average_into(registries, avg_weights, rnd, aggregate, prev, config.max_update_norm,
                                             config.generator_only)
            prev = average
            if on_round is not None:
                on_round(rnd, vectors, average)

    final = registries[0]
    return FederatedResult(
        encoder=enc,
        config=config,
        generator_state={k: v.clone() for k, v in final.g.generator.state_dict().items()},
        discriminator_state={k: v.clone() for k, v in final.d.discriminator.state_dict().items()},
        history=history,
        registry_sizes=[reg.size for reg in registries],
        wall_seconds=time.perf_counter() - start,
        epsilon=None if config.dp is None else config.epsilon_after(rounds * config.local_iters),
    )


RoundHook = Callable[[int, list[np.ndarray], np.ndarray], None]
"""on_round(round, per-registry [G ‖ D] vectors, averaged [G ‖ D] vector)"""


@dataclass(frozen=True)
class StepContext:
    """Which local iteration a :data:`StepRunner` runs, and its noise seed."""

    registry: int
    round: int
    iter: int
    batch_size: int
    noise_seed: int


StepRunner = Callable[[StepContext, GeneratorSide, DiscriminatorSide, RealBatchSampler], DStepResult]
"""step(context, generator side, discriminator side, real sampler) -> the D step's result,
after the generator has applied the feedback."""


Aggregator = Callable[[int, list[np.ndarray], list[float] | None], np.ndarray]
"""aggregate(round, per-registry [G ‖ D] float32 vectors, weights or None) -> average"""


def _average_into(
    registries: Sequence[_Registry], weights: Sequence[float] | None,
    rnd: int = 0, aggregate: Aggregator | None = None,
    prev: np.ndarray | None = None, max_norm: float | None = None, generator_only: bool = False,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Average the registries' [G ‖ D] vectors (G alone with ``generator_only``), each
    clipped first to ``max_norm`` from ``prev`` (the previous average;
    :mod:`synthreg.gan.bound`, as every merger app clips its own before masking),
    check the average against the bound, and load it into every registry. Returns
    (the clipped vectors, the average)."""
    g_vecs = [state_dict_to_vector(r.g.generator) for r in registries]
    d_vecs = [np.zeros(0, np.float32) if generator_only else state_dict_to_vector(r.d.discriminator)
              for r in registries]
    vectors = [np.concatenate([g, d]) for g, d in zip(g_vecs, d_vecs, strict=True)]
    n_g = g_vecs[0].size
    if prev is not None:
        vectors = [clip_update(v, prev, max_norm) for v in vectors]
    if aggregate is None:
        average = np.concatenate([fedavg([v[:n_g] for v in vectors], weights),
                                  fedavg([v[n_g:] for v in vectors], weights)])
    else:
        average = np.asarray(aggregate(rnd, vectors, None if weights is None else list(weights)),
                             dtype=np.float32)
        if average.shape != vectors[0].shape:
            raise TrainConfigError(f"aggregate returned shape {average.shape}, expected {vectors[0].shape}")
    if prev is not None:
        check_bound(average, prev, max_norm, rnd)
    for reg in registries:
        vector_to_state_dict(reg.g.generator, average[:n_g])
        if not generator_only:
            vector_to_state_dict(reg.d.discriminator, average[n_g:])
    return vectors, average


def train_centralised(
    df: pd.DataFrame,
    schema: Schema,
    config: TrainConfig,
    progress: bool = True,
    iters_multiplier: int = 1,
    encoder: TabularEncoder | None = None,
) -> FederatedResult:
    """The same model trained on pooled data (the N = 1 path).

    ``iters_multiplier`` scales ``local_iters``: 1 = as many steps as each
    federated registry's model takes (same wall-clock when registries run in
    parallel); N = the total number of steps of an N-registry federation.
    Updates are not bounded (one party, nobody to poison the average; a bound
    measured for K local iterations would clip K * ``iters_multiplier``).
    """
    if iters_multiplier < 1:
        raise TrainConfigError(f"iters_multiplier must be >= 1, got {iters_multiplier}")
    cfg = replace(config, local_iters=config.local_iters * iters_multiplier, max_update_norm=None)
    return train_federated([df], schema, cfg, progress=progress, encoder=encoder)


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )

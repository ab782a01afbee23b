"""Separable GAN training step: the generator side and the discriminator side.

Who calls: :mod:`synthreg.gan.federated` in-process, and the generator app and
discriminator app of a registry, which run as separate processes and exchange
only numpy arrays (through the workspace, hashes on the ledger):

1. ``GeneratorSide.make_fake(batch_size, seed)`` -> :class:`FakeBatch` (float32
   array in the encoder's feature space + the noise seed used; keep the forward
   graph for step 3).
2. ``DiscriminatorSide.step(fake, real)`` -> :class:`DStepResult`: one WGAN-GP
   critic update on (real, fake), then, with the *updated* critic, the generator
   loss ``-mean(D(fake))`` and its gradient w.r.t. the fake batch (the feedback;
   a scalar loss alone cannot train G).
3. ``GeneratorSide.apply_feedback(feedback)`` back-propagates the feedback
   through G's last forward pass (vector-Jacobian product) and takes an Adam step.

By the chain rule this is exactly the update a joint graph G->D would make
(tested). Everything is a pure function of weights, optimiser state and seeds.

What fails when: :class:`NoPendingBatchError` if feedback arrives without a
pending fake batch; :class:`FeedbackShapeError` if its shape differs from the
fake batch; :class:`NonFiniteFeedbackError` for NaN/Inf feedback;
:class:`BatchShapeError` when D gets mismatched or pac-indivisible batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from synthreg.data.hashing import array_sha256
from synthreg.gan.encoder import SpanInfo
from synthreg.gan.models import Discriminator, Generator, activate, sample_noise

if TYPE_CHECKING:
    from synthreg.gan.condition import Condition


class StepError(ValueError):
    """Base of step-protocol failures."""


class NoPendingBatchError(StepError):
    def __init__(self) -> None:
        super().__init__("apply_feedback called without a pending fake batch")


class FeedbackShapeError(StepError):
    def __init__(self, expected: tuple[int, ...], got: tuple[int, ...]) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"feedback shape {got} does not match fake batch shape {expected}")


class NonFiniteFeedbackError(StepError):
    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(f"feedback contains {count} NaN/Inf values")


class BatchShapeError(StepError):
    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"bad batch: {detail}")


@dataclass(frozen=True)
class OptimConfig:
    """Adam settings for both sides (CTGAN defaults) and the gradient-penalty weight."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 1e-6
    gp_weight: float = 10.0


@dataclass(frozen=True)
class FakeBatch:
    """A generated batch (float32, shape (batch, data_dim)) and its noise seed."""

    array: np.ndarray
    noise_seed: int


@dataclass(frozen=True)
class DStepResult:
    """Critic loss (incl. gradient penalty), generator loss, and feedback dL_G/dfake."""

    d_loss: float
    g_loss: float
    feedback: np.ndarray


def warm_up_torch() -> None:
    """Build a throwaway optimizer: torch imports ``torch._dynamo`` lazily on the first
    one (its ``_disable_dynamo`` wrapper), 3-7 s of CPU on a 2-core machine. An app that
    trains calls this when it starts, so the import is not paid inside a run's first
    round, where six apps paying it at once held up the consortium's first local steps."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def derive_seed(base: int, *parts: object) -> int:
    """Deterministic 63-bit seed from a base seed and labels (e.g. registry, round, iter)."""
    text = "/".join([str(base), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)


def generate_batch(
    generator: Generator, output_info: Sequence[SpanInfo], tau: float, batch_size: int, seed: int,
    condition: Condition | None = None,
) -> torch.Tensor:
    """G's activated output for ``batch_size`` noise rows; noise, condition and Gumbel
    draws from ``seed``. With a ``condition`` (:mod:`synthreg.gan.condition`) G sees
    [z ‖ c] and the conditioned column's span of the output is c.

    The one forward pass of the generator: :meth:`GeneratorSide.forward` (training,
    graph kept) and :func:`synthreg.gan.sampling.sample_records` (under ``no_grad``).
    """
    rng = torch.Generator().manual_seed(seed)
    z = sample_noise(batch_size, generator.noise_dim, rng)
    if condition is None:
        return activate(generator(z), output_info, tau, rng)
    cond = condition.draw(batch_size, rng)
    return condition.insert(activate(generator(torch.cat([z, cond], dim=1)), output_info, tau, rng), cond)


class GeneratorSide:
    """Owns G and its optimiser; holds the last forward pass until feedback arrives."""

    def __init__(
        self,
        generator: Generator,
        output_info: Sequence[SpanInfo],
        tau: float,
        optim: OptimConfig,
        condition: Condition | None = None,
    ) -> None:
        self.generator = generator
        self.output_info = tuple(output_info)
        self.tau = tau
        self.condition = condition
        """with a conditional generator: the condition drawn at this registry's own frequencies"""
        self.optimizer = torch.optim.Adam(
            generator.parameters(), lr=optim.lr_g, betas=optim.betas,
            weight_decay=optim.weight_decay,
        )
        self._pending: torch.Tensor | None = None

    def forward(self, batch_size: int, seed: int) -> torch.Tensor:
        """Fake batch as a tensor attached to G's graph (noise and Gumbel from ``seed``)."""
        return generate_batch(self.generator, self.output_info, self.tau, batch_size, seed, self.condition)

    def make_fake(self, batch_size: int, seed: int) -> FakeBatch:
        """Step 1: generate a batch and remember its graph for :meth:`apply_feedback`."""
        self.generator.train()
        fake = self.forward(batch_size, seed)
        self._pending = fake
        return FakeBatch(array=fake.detach().numpy().copy(), noise_seed=seed)

    def apply_feedback(self, feedback: np.ndarray) -> None:
        """Step 3: back-propagate ``feedback`` (dL_G/dfake) through G and update G."""
        if self._pending is None:
            raise NoPendingBatchError()
        fb = np.asarray(feedback)
        if tuple(fb.shape) != tuple(self._pending.shape):
            raise FeedbackShapeError(tuple(self._pending.shape), tuple(fb.shape))
        if not np.isfinite(fb).all():
            raise NonFiniteFeedbackError(int((~np.isfinite(fb)).sum()))
        pending, self._pending = self._pending, None
        self.optimizer.zero_grad(set_to_none=True)
        pending.backward(torch.from_numpy(fb.astype(np.float32, copy=False)))
        self.optimizer.step()

    def discard_pending(self) -> None:
        """Drop a pending batch (e.g. the discriminator refused it)."""
        self._pending = None


class DiscriminatorSide:
    """Owns D and its optimiser; WGAN-GP critic with PacGAN grouping."""

    def __init__(self, discriminator: Discriminator, optim: OptimConfig, seed: int) -> None:
        self.discriminator = discriminator
        self.gp_weight = optim.gp_weight
        self.optimizer = torch.optim.Adam(
            discriminator.parameters(), lr=optim.lr_d, betas=optim.betas,
            weight_decay=optim.weight_decay,
        )
        self.rng = torch.Generator().manual_seed(seed)
        """the gradient penalty's RNG (its state is part of an app's checkpoint)"""

    def _check(self, fake: np.ndarray, real: np.ndarray) -> None:
        dim, pac = self.discriminator.data_dim, self.discriminator.pac
        for name, arr in (("fake", fake), ("real", real)):
            if arr.ndim != 2 or arr.shape[1] != dim:
                raise BatchShapeError(f"{name} batch shape {arr.shape}, expected (n, {dim})")
            if arr.shape[0] == 0 or arr.shape[0] % pac:
                raise BatchShapeError(f"{name} batch of {arr.shape[0]} not a multiple of {pac}")
            if not np.isfinite(arr).all():
                raise BatchShapeError(f"{name} batch contains NaN/Inf")
        if fake.shape != real.shape:
            raise BatchShapeError(f"fake {fake.shape} and real {real.shape} differ")

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pac, dim = self.discriminator.pac, real.shape[1]
        alpha = torch.rand((real.shape[0] // pac, 1, 1), generator=self.rng)
        alpha = alpha.repeat(1, pac, dim).reshape(-1, dim)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grads,) = torch.autograd.grad(
            self.discriminator(mixed).sum(), mixed, create_graph=True
        )
        norms = grads.reshape(-1, pac * dim).norm(2, dim=1)
        penalty: torch.Tensor = self.gp_weight * ((norms - 1) ** 2).mean()
        return penalty

    def step(self, fake: np.ndarray, real: np.ndarray) -> DStepResult:
        """Step 2: update D on (real, fake); return losses and the generator feedback."""
        fake_np = np.asarray(fake, dtype=np.float32)
        real_np = np.asarray(real, dtype=np.float32)
        self._check(fake_np, real_np)
        fake_t = torch.from_numpy(fake_np.copy())
        real_t = torch.from_numpy(real_np.copy())
        self.discriminator.train()
        self.optimizer.zero_grad(set_to_none=True)
        wasserstein = self.discriminator(fake_t).mean() - self.discriminator(real_t).mean()
        d_loss = wasserstein + self.gradient_penalty(real_t, fake_t)
        d_loss.backward()
        self.optimizer.step()

        fake_var = fake_t.clone().requires_grad_(True)
        g_loss = -self.discriminator(fake_var).mean()
        (feedback,) = torch.autograd.grad(g_loss, fake_var)
        return DStepResult(
            d_loss=float(d_loss.detach()),
            g_loss=float(g_loss.detach()),
            feedback=feedback.numpy().astype(np.float32, copy=True),
        )


class RealBatchSampler:
    """Uniform sampling with replacement from a registry's encoded real data (local only)."""

    def __init__(self, encoded: np.ndarray, seed: int) -> None:
        if encoded.ndim != 2 or encoded.shape[0] == 0:
            raise BatchShapeError(f"real data of shape {encoded.shape}")
        self.encoded = np.ascontiguousarray(encoded, dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        """sampling RNG (its state is part of the discriminator app's checkpoint)"""

    def sample(self, batch_size: int) -> np.ndarray:
        idx = self.rng.integers(0, self.encoded.shape[0], size=batch_size)
        return self.encoded[idx]

    def sample_for(self, fake: np.ndarray) -> np.ndarray:
        """The real batch to judge ``fake`` against: here :meth:`sample` of its size
        (a conditional sampler matches each row's condition)."""
        return self.sample(int(np.asarray(fake).shape[0]))

    def commitment(self, batch: np.ndarray) -> str:
        """What a discriminator step record's ``real_sha256`` holds for ``batch`` (the
        registry can open it to an auditor with the batch): its SHA-256."""
        return array_sha256(batch)

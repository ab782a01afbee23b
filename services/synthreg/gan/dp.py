"""DP-SGD on a registry's discriminator, the one model that reads real records (issue 12).

Who calls: :func:`make_discriminator`, from :func:`synthreg.gan.federated.train_federated`
and the discriminator app, which both get a plain :class:`DiscriminatorSide` and
:class:`RealBatchSampler` when the run has no privacy budget (unchanged, bit for bit).

The mechanism (Abadi et al. 2016), per discriminator step:

* **Poisson sampling** (:class:`PoissonSampler`): every record of the registry
  joins the real batch with probability q (``dp_sample_rate``), independently; the
  batch size varies. This is the sampling Opacus's RDP accountant assumes.
* **Per-record loss** of real record i, paired with a fake row f_i drawn uniformly
  from the fake batch (secret randomness, independently per record) and a mixing
  weight a_i: ``D(f_i) - D(real_i) + gp_weight * (|grad_x D(x_i)| - 1)^2`` with
  ``x_i = a_i real_i + (1 - a_i) f_i``. It is the WGAN-GP critic loss of one
  (real, fake) pair, so the whole loss is clipped together: the gradient penalty's
  interpolate touches one real record, and the fake term must be clipped with the
  real one, or the clipped update is biased (below). Per-record gradients come
  from ``torch.func`` (``vmap`` of ``grad``, the inner ``grad`` giving the
  penalty's input gradient). Opacus's own per-sample machinery (GradSampleModule
  hooks, or its ``functorch`` mode) computes a per-sample gradient of a loss from
  one backward pass and cannot differentiate the penalty's inner gradient (a double
  backward), so it is not used for the gradients; clipping and noise are the
  standard DP-SGD lines below.
* **Clip and noise**: each per-record gradient is scaled to L2 norm at most C
  (``dp_max_grad_norm``), the clipped gradients are summed, Gaussian noise of
  standard deviation sigma * C is added (``dp_noise_multiplier``) and the sum is
  divided by the expected batch size q * n.

Why the fake term is clipped with its pair (issue 12, part 2): per-record
gradients of ``-D(real_i) + penalty`` have norms of 5-70 on the demo (the penalty
dominates), so clipping to C = 1 shrank the real side 5-70 times while an
unclipped ``mean_j D(fake_j)`` kept its full size. The critic then mostly pushed
D(fake) down (D of real and fake records drifted down together), and its update
did not vanish even when G matched the data: at a near-zero noise multiplier
(epsilon 10^4) quality was 0.63 against 0.85 without DP, and 0.85 with the pairs
clipped together. With the pair's loss, a fake row identical to its real one
cancels exactly, whatever C.

One record changes at most one clipped per-record gradient (norm <= C) in a step:
the step is the subsampled Gaussian mechanism, and everything the discriminator
hands on — its weights, the generator feedback, ``g_loss`` — is post-processing.
So is the generator. ``d_loss`` is reported as ``mean D(fake)`` over the fake batch
only (a loss on the real batch would be an unnoised release), and the real batch's
``real_sha256`` on the ledger is a keyed commitment (:class:`PoissonSampler`), not a
plain hash.

Randomness must be secret: sampling and noise are seeded from ``dp_seed``, a
registry's own secret (the run's seed is public, on the ledger; with it anyone
could replay the sampling and subtract the noise). Requires ``pac = 1``: PacGAN
packs ``pac`` records into one critic input, and with Poisson sampling adding a
record would shift the packing of every later one.

What fails when: :class:`synthreg.gan.step.BatchShapeError` on a malformed batch.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from synthreg.data.hashing import array_bytes
from synthreg.gan.condition import ConditionalSampler
from synthreg.gan.models import Discriminator
from synthreg.gan.step import (
    BatchShapeError,
    DiscriminatorSide,
    DStepResult,
    OptimConfig,
    RealBatchSampler,
    derive_seed,
)

__all__ = ["DPDiscriminatorSide", "DPSettings", "PoissonSampler", "commitment_key", "make_discriminator"]


class DPSettings:
    """The mechanism's parameters (from the training config)."""

    def __init__(self, noise_multiplier: float, max_grad_norm: float, sample_rate: float) -> None:
        self.noise_multiplier, self.max_grad_norm, self.sample_rate = noise_multiplier, max_grad_norm, sample_rate


class PoissonSampler(RealBatchSampler):
    """Each record joins a batch with probability ``sample_rate`` (batch size varies).

    The batch's commitment on the ledger is keyed (HMAC-SHA256 under ``commit_key``,
    derived from the registry's secret ``dp_seed``): a plain hash is a deterministic
    function of which records were sampled, a release outside the DP mechanism that
    anyone holding candidate records could test guesses against. Keyed, it hides the
    batch from everyone without the registry's secret, and the registry can still open
    it to an auditor (key and batch)."""

    def __init__(self, encoded: np.ndarray, seed: int, sample_rate: float, commit_key: bytes) -> None:
        super().__init__(encoded, seed)
        self.sample_rate = sample_rate
        if len(commit_key) < 32:
            raise ValueError("a DP sampler's commitment key must have at least 32 bytes")
        self._commit_key = commit_key

    def commitment(self, batch: np.ndarray) -> str:
        return hmac.new(self._commit_key, array_bytes(batch), hashlib.sha256).hexdigest()

    @property
    def expected_batch(self) -> float:
        return float(self.sample_rate * self.encoded.shape[0])

    def sample(self, batch_size: int) -> np.ndarray:  # the size follows from the sample rate
        mask = self.rng.random(self.encoded.shape[0]) < self.sample_rate
        batch: np.ndarray = self.encoded[mask]
        return batch


class DPDiscriminatorSide(DiscriminatorSide):
    """WGAN-GP critic trained by DP-SGD (module docstring); ``rng`` draws the penalty's
    mixing weights and the noise (its state is part of an app's checkpoint)."""

    def __init__(self, discriminator: Discriminator, optim: OptimConfig, seed: int, dp: DPSettings,
                 expected_batch: float) -> None:
        if discriminator.pac != 1:
            raise ValueError(f"DP-SGD needs pac = 1, got {discriminator.pac}")
        super().__init__(discriminator, optim, seed)
        self.dp = dp
        self.expected_batch = expected_batch

    def _per_record_grads(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-record gradients of the pair losses (module docstring): record i gets its
        own fake row and mixing weight, drawn from the secret ``rng`` independently of
        the other records, so adding a record adds one term and changes no other."""
        dis, gp_weight = self.discriminator, self.gp_weight
        params = {k: v.detach() for k, v in dis.named_parameters()}
        pairs = fake[torch.randint(fake.shape[0], (real.shape[0],), generator=self.rng)]
        alpha = torch.rand((real.shape[0], 1), generator=self.rng)

        def critic(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = functional_call(dis, p, (x.unsqueeze(0),)).squeeze()
            return out

        def pair_loss(p: dict[str, torch.Tensor], r: torch.Tensor, f: torch.Tensor,
                      a: torch.Tensor) -> torch.Tensor:
            gx = grad(critic, argnums=1)(p, a * r + (1 - a) * f)
            loss: torch.Tensor = critic(p, f) - critic(p, r) + gp_weight * (gx.norm(2) - 1) ** 2
            return loss

        per: dict[str, torch.Tensor] = vmap(grad(pair_loss), in_dims=(None, 0, 0, 0))(params, real, pairs, alpha)
        return per

    def step(self, fake: np.ndarray, real: np.ndarray) -> DStepResult:
        """One DP-SGD critic update on (real, fake); feedback as the plain side's."""
        fake_t = torch.from_numpy(np.array(fake, dtype=np.float32))
        real_t = torch.from_numpy(np.array(real, dtype=np.float32)).reshape(-1, fake_t.shape[-1])
        dim = self.discriminator.data_dim
        if fake_t.ndim != 2 or fake_t.shape[1] != dim or fake_t.shape[0] == 0:
            raise BatchShapeError(f"fake batch shape {tuple(fake_t.shape)}, expected (n, {dim})")
        if not (torch.isfinite(fake_t).all() and torch.isfinite(real_t).all()):
            raise BatchShapeError("batch contains NaN/Inf")
        self.discriminator.train()
        params = dict(self.discriminator.named_parameters())
        with torch.no_grad():
            fake_term = self.discriminator(fake_t).mean()  # reported only
        c, sigma = self.dp.max_grad_norm, self.dp.noise_multiplier
        if real_t.shape[0]:
            per = self._per_record_grads(real_t, fake_t)
            norms = torch.stack([(g.reshape(g.shape[0], -1) ** 2).sum(1) for g in per.values()]).sum(0).sqrt()
            scale = (c / (norms + 1e-6)).clamp(max=1.0)
        for name, p in params.items():
            total = torch.zeros_like(p) if not real_t.shape[0] else torch.einsum("i,i...->...", scale, per[name])
            total = total + torch.normal(0.0, sigma * c, size=p.shape, generator=self.rng)
            p.grad = total / self.expected_batch
        self.optimizer.step()

        fake_var = fake_t.clone().requires_grad_(True)
        g_loss = -self.discriminator(fake_var).mean()
        (feedback,) = torch.autograd.grad(g_loss, fake_var)
        return DStepResult(d_loss=float(fake_term.detach()), g_loss=float(g_loss.detach()),
                           feedback=feedback.numpy().astype(np.float32, copy=True))


def commitment_key(dp_seed: int, registry: int) -> bytes:
    """The key of registry ``registry``'s real-batch commitments (:class:`PoissonSampler`)."""
    return hashlib.sha256(f"synthreg/real-batch-commitment/{dp_seed}/{registry}".encode()).digest()


def make_discriminator(discriminator: Discriminator, optim: OptimConfig, seed: int, registry: int,
                       encoded: np.ndarray, dp: DPSettings | None = None,
                       dp_seed: int | None = None,
                       condition_span: tuple[int, int] | None = None) -> tuple[DiscriminatorSide, RealBatchSampler]:
    """Registry ``registry``'s discriminator side and real sampler: seeded from the
    run's ``seed`` without DP; with ``dp``, DP-SGD seeded from the registry's secret
    ``dp_seed`` (required). ``condition_span`` (start, width) of a conditional
    generator's column: the sampler matches each fake row's level
    (:class:`~synthreg.gan.condition.ConditionalSampler`; not with DP)."""
    if dp is None:
        real_seed = derive_seed(seed, "real", registry)
        real = (RealBatchSampler(encoded, real_seed) if condition_span is None
                else ConditionalSampler(encoded, real_seed, *condition_span))
        return DiscriminatorSide(discriminator, optim, derive_seed(seed, "gp", registry)), real
    if condition_span is not None:
        raise ValueError("a conditional generator cannot be trained with a DP discriminator")
    if dp_seed is None:
        raise ValueError("a DP discriminator needs its registry's secret dp_seed")
    sampler = PoissonSampler(encoded, derive_seed(dp_seed, "real", registry), dp.sample_rate,
                             commitment_key(dp_seed, registry))
    side = DPDiscriminatorSide(discriminator, optim, derive_seed(dp_seed, "gp", registry), dp,
                               sampler.expected_batch)
    return side, sampler

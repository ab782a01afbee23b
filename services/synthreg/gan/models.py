"""Tabular generator and discriminator (CTGAN-family, sized for quick CPU training).

Who calls: :mod:`synthreg.gan.step` (the separable G / D sides) and
:mod:`synthreg.gan.federated`; the ledger apps build the same modules from the
same :class:`ModelConfig` so weight vectors line up across registries.

* :class:`Generator`: residual MLP (each block's output is concatenated to its
  input, as in CTGAN) producing raw logits; :func:`activate` turns them into a
  fake record batch in the encoder's feature space: identity for continuous spans,
  Gumbel-softmax (temperature ``tau``) for one-hot spans, with Gumbel noise drawn
  from an explicit ``torch.Generator`` so a batch is a pure function of
  (weights, noise seed). LayerNorm instead of BatchNorm: no running-statistics
  buffers, so the state dict is parameters only and FedAvg is plain averaging.
* :class:`Discriminator`: PacGAN critic (``pac`` records judged together) with
  LeakyReLU, used with the WGAN-GP loss in :mod:`synthreg.gan.step`.

Models are built on CPU in float32; :func:`build_models` seeds initialisation
without touching the global RNG, so every registry starts from the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from synthreg.gan.encoder import SpanInfo


@dataclass(frozen=True)
class ModelConfig:
    """Architecture shared by the consortium (part of the training config)."""

    noise_dim: int = 64
    gen_dims: tuple[int, ...] = (128, 128)
    dis_dims: tuple[int, ...] = (128, 128)
    pac: int = 10
    tau: float = 0.2
    cond_dim: int = 0
    """width of a conditional generator's condition (:mod:`synthreg.gan.condition`); 0: none"""


class _Residual(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.norm(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    """Noise (batch, noise_dim) [‖ condition (batch, cond_dim)] -> raw logits (batch, data_dim)."""

    def __init__(self, noise_dim: int, gen_dims: Sequence[int], data_dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = noise_dim + cond_dim
        for width in gen_dims:
            layers.append(_Residual(dim, width))
            dim += width
        layers.append(nn.Linear(dim, data_dim))
        self.net = nn.Sequential(*layers)
        self.noise_dim = noise_dim
        self.data_dim = data_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(z)
        return out


class Discriminator(nn.Module):
    """PacGAN critic: (batch, data_dim) with batch % pac == 0 -> (batch // pac, 1)."""

    def __init__(self, data_dim: int, dis_dims: Sequence[int], pac: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = data_dim * pac
        for width in dis_dims:
            layers += [nn.Linear(dim, width), nn.LeakyReLU(0.2)]
            dim = width
        layers.append(nn.Linear(dim, 1))
        self.net = nn.Sequential(*layers)
        self.pac = pac
        self.data_dim = data_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % self.pac:
            raise ValueError(f"batch of {x.shape[0]} is not a multiple of pac={self.pac}")
        out: torch.Tensor = self.net(x.reshape(-1, self.data_dim * self.pac))
        return out


def activate(
    logits: torch.Tensor,
    output_info: Sequence[SpanInfo],
    tau: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Apply each span's activation: identity (continuous), or Gumbel-softmax with seeded noise."""
    parts: list[torch.Tensor] = []
    pos = 0
    for span in output_info:
        chunk = logits[:, pos:pos + span.dim]
        if span.kind == "continuous":
            parts.append(chunk)
        else:
            u = torch.rand(chunk.shape, generator=generator, dtype=chunk.dtype)
            neg_log_u = (-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10)
            gumbel = -torch.log(neg_log_u)
            parts.append(torch.softmax((chunk + gumbel) / tau, dim=1))
        pos += span.dim
    return torch.cat(parts, dim=1)


def sample_noise(batch_size: int, noise_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise from an explicit generator."""
    return torch.randn((batch_size, noise_dim), generator=generator)


def build_models(data_dim: int, config: ModelConfig, seed: int) -> tuple[Generator, Discriminator]:
    """G and D initialised from ``seed`` (global RNG state is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = Generator(config.noise_dim, config.gen_dims, data_dim, config.cond_dim)
        dis = Discriminator(data_dim, config.dis_dims, config.pac)
    return gen, dis

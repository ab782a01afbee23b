"""Sampling synthetic records from a trained generator (one code path for everyone).

Who calls: :meth:`synthreg.gan.federated.FederatedResult.sample` (right after
training) and :meth:`synthreg.gan.bundle.Bundle.sample` (from a model bundle on
disk, ``synthreg sample``): the same weights, encoder and seed give the same
records either way. Nothing is read or written; only the generator's forward
pass runs (no gradients).

What fails when: :class:`~synthreg.gan.encoder.EncodingShapeError` if the
generator's output width is not the encoder's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import torch

from synthreg.gan.condition import Condition
from synthreg.gan.encoder import TabularEncoder
from synthreg.gan.models import Generator
from synthreg.gan.step import derive_seed, generate_batch

if TYPE_CHECKING:
    from synthreg.gan.federated import TrainConfig


def sample_records(generator: Generator, encoder: TabularEncoder, config: TrainConfig, n: int,
                   seed: int) -> pd.DataFrame:
    """``n`` synthetic records in the schema's columns and dtypes.

    Noise, condition and Gumbel draws come from ``derive_seed(seed, "sample")``, so
    the result is a pure function of (weights, encoder, ``config``, ``n``, ``seed``).
    A conditional generator (``config.condition_on``) draws its column at the
    consortium's frequencies (the agreed level counts in the encoder's statistics).
    """
    condition = None if config.condition_on is None else Condition.consortium(encoder, config.condition_on)
    with torch.no_grad():
        fake = generate_batch(generator, encoder.output_info, config.tau, n, derive_seed(seed, "sample"), condition)
    return encoder.decode(fake.numpy())

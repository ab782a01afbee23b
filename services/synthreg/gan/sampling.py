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

import pandas as pd
import torch

from synthreg.gan.encoder import TabularEncoder
from synthreg.gan.models import Generator
from synthreg.gan.step import derive_seed, generate_batch


def sample_records(generator: Generator, encoder: TabularEncoder, tau: float, n: int, seed: int) -> pd.DataFrame:
    """``n`` synthetic records in the schema's columns and dtypes.

    Noise and Gumbel draws come from ``derive_seed(seed, "sample")``, so the
    result is a pure function of (weights, encoder, ``tau``, ``n``, ``seed``).
    """
    with torch.no_grad():
        fake = generate_batch(generator, encoder.output_info, tau, n, derive_seed(seed, "sample"))
    return encoder.decode(fake.numpy())

"""synthreg.gan: the consortium encoder, generator/discriminator, the separable
step API, weight vectors, in-process federated training (FedAvg) and sampling.
Model bundles on disk: :mod:`synthreg.gan.bundle` (imported on its own).

The names below are imported on first use (PEP 562), so importing a light
submodule (:mod:`synthreg.gan.config`, :mod:`synthreg.gan.stoprule`) does not
load torch: the `synthreg run` and `registry` commands start in a fraction of
a second instead of several seconds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types of the lazy names below, for mypy
    from synthreg.gan.config import TrainConfig as TrainConfig
    from synthreg.gan.config import TrainConfigError as TrainConfigError
    from synthreg.gan.encoder import EncoderFormatError as EncoderFormatError
    from synthreg.gan.encoder import EncoderStats as EncoderStats
    from synthreg.gan.encoder import SpanInfo as SpanInfo
    from synthreg.gan.encoder import TabularEncoder as TabularEncoder
    from synthreg.gan.federated import FederatedResult as FederatedResult
    from synthreg.gan.federated import RoundLoss as RoundLoss
    from synthreg.gan.federated import fedavg as fedavg
    from synthreg.gan.federated import train_centralised as train_centralised
    from synthreg.gan.federated import train_federated as train_federated
    from synthreg.gan.models import Discriminator as Discriminator
    from synthreg.gan.models import Generator as Generator
    from synthreg.gan.models import ModelConfig as ModelConfig
    from synthreg.gan.models import build_models as build_models
    from synthreg.gan.sampling import sample_records as sample_records
    from synthreg.gan.step import DiscriminatorSide as DiscriminatorSide
    from synthreg.gan.step import DStepResult as DStepResult
    from synthreg.gan.step import FakeBatch as FakeBatch
    from synthreg.gan.step import GeneratorSide as GeneratorSide
    from synthreg.gan.step import OptimConfig as OptimConfig
    from synthreg.gan.step import RealBatchSampler as RealBatchSampler
    from synthreg.gan.weights import state_dict_to_vector as state_dict_to_vector
    from synthreg.gan.weights import vector_to_state_dict as vector_to_state_dict

_HOME = {
    "config": ("TrainConfig", "TrainConfigError"),
    "encoder": ("EncoderFormatError", "EncoderStats", "SpanInfo", "TabularEncoder"),
    "federated": ("FederatedResult", "RoundLoss", "fedavg", "train_centralised", "train_federated"),
    "models": ("Discriminator", "Generator", "ModelConfig", "build_models"),
    "sampling": ("sample_records",),
    "step": ("DStepResult", "DiscriminatorSide", "FakeBatch", "GeneratorSide", "OptimConfig", "RealBatchSampler"),
    "weights": ("state_dict_to_vector", "vector_to_state_dict"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

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

if TYPE_CHECKING:
    from synthreg.gan.config import TrainConfig, TrainConfigError
    from synthreg.gan.encoder import EncoderFormatError, EncoderStats, SpanInfo, TabularEncoder
    from synthreg.gan.federated import FederatedResult, RoundLoss, fedavg, train_centralised, train_federated
    from synthreg.gan.models import Discriminator, Generator, ModelConfig, build_models
    from synthreg.gan.sampling import sample_records
    from synthreg.gan.step import (
        DiscriminatorSide,
        DStepResult,
        FakeBatch,
        GeneratorSide,
        OptimConfig,
        RealBatchSampler,
    )
    from synthreg.gan.weights import state_dict_to_vector, vector_to_state_dict

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

__all__ = [
    "DStepResult",
    "Discriminator",
    "DiscriminatorSide",
    "EncoderFormatError",
    "EncoderStats",
    "FakeBatch",
    "FederatedResult",
    "Generator",
    "GeneratorSide",
    "ModelConfig",
    "OptimConfig",
    "RealBatchSampler",
    "RoundLoss",
    "SpanInfo",
    "TabularEncoder",
    "TrainConfig",
    "TrainConfigError",
    "build_models",
    "fedavg",
    "sample_records",
    "state_dict_to_vector",
    "train_centralised",
    "train_federated",
    "vector_to_state_dict",
]
assert sorted(__all__) == sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

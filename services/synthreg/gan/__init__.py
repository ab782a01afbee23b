"""synthreg.gan: the consortium encoder, generator/discriminator, the separable
step API, weight vectors and in-process federated training (FedAvg)."""

from synthreg.gan.encoder import EncoderStats, SpanInfo, TabularEncoder
from synthreg.gan.federated import (
    FederatedResult,
    RoundLoss,
    TrainConfig,
    TrainConfigError,
    fedavg,
    train_centralised,
    train_federated,
)
from synthreg.gan.models import Discriminator, Generator, ModelConfig, build_models
from synthreg.gan.step import (
    DiscriminatorSide,
    DStepResult,
    FakeBatch,
    GeneratorSide,
    OptimConfig,
    RealBatchSampler,
)
from synthreg.gan.weights import state_dict_to_vector, vector_to_state_dict

__all__ = [
    "DStepResult",
    "Discriminator",
    "DiscriminatorSide",
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
    "state_dict_to_vector",
    "train_centralised",
    "train_federated",
    "vector_to_state_dict",
]

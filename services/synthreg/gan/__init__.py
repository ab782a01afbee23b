"""synthreg.gan: the consortium encoder, generator/discriminator, the separable
step API, weight vectors, in-process federated training (FedAvg) and sampling.
Model bundles on disk: :mod:`synthreg.gan.bundle` (imported on its own)."""

from synthreg.gan.encoder import EncoderFormatError, EncoderStats, SpanInfo, TabularEncoder
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

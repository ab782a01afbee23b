"""Weights <-> flat float32 vectors, and FedAvg."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthreg.gan.federated import TrainConfigError, fedavg
from synthreg.gan.models import ModelConfig, build_models
from synthreg.gan.weights import (
    NonFiniteWeightsError,
    WeightVectorLengthError,
    WeightVectorShapeError,
    state_dict_to_vector,
    vector_layout,
    vector_to_state_dict,
)

CFG = ModelConfig(noise_dim=8, gen_dims=(16, 16), dis_dims=(16,), pac=2)


def test_roundtrip_is_exact() -> None:
    gen_a, _ = build_models(7, CFG, seed=1)
    gen_b, _ = build_models(7, CFG, seed=2)
    vec = state_dict_to_vector(gen_a)
    assert vec.dtype == np.float32 and vec.ndim == 1
    assert vec.size == sum(p.numel() for p in gen_a.parameters())
    assert not np.array_equal(vec, state_dict_to_vector(gen_b))
    vector_to_state_dict(gen_b, vec)
    np.testing.assert_array_equal(state_dict_to_vector(gen_b), vec)
    for key, tensor in gen_a.state_dict().items():
        assert torch.equal(tensor, gen_b.state_dict()[key]), key


def test_layout_is_sorted_and_deterministic() -> None:
    gen, _ = build_models(7, CFG, seed=1)
    keys = [k for k, _ in vector_layout(gen)]
    assert keys == sorted(keys)
    assert vector_layout(build_models(7, CFG, seed=9)[0]) == vector_layout(gen)


def test_bad_vectors_are_rejected_and_leave_module_unchanged() -> None:
    gen, _ = build_models(7, CFG, seed=1)
    vec = state_dict_to_vector(gen)
    with pytest.raises(WeightVectorLengthError) as info:
        vector_to_state_dict(gen, vec[:-1])
    assert (info.value.expected, info.value.got) == (vec.size, vec.size - 1)
    with pytest.raises(WeightVectorShapeError):
        vector_to_state_dict(gen, vec.astype(np.float64))
    poisoned = vec.copy()
    poisoned[10] = np.inf
    poisoned[20] = np.nan
    with pytest.raises(NonFiniteWeightsError) as nf:
        vector_to_state_dict(gen, poisoned)
    assert (nf.value.count, nf.value.first_index) == (2, 10)
    np.testing.assert_array_equal(state_dict_to_vector(gen), vec)


def test_fedavg_of_identical_models_is_identity() -> None:
    gen, _ = build_models(7, CFG, seed=4)
    vec = state_dict_to_vector(gen)
    for weights in (None, [583.0, 974.0, 1425.0]):
        avg = fedavg([vec.copy(), vec.copy(), vec.copy()], weights)
        np.testing.assert_array_equal(avg, vec)
        vector_to_state_dict(gen, avg)
        np.testing.assert_array_equal(state_dict_to_vector(gen), vec)


def test_fedavg_weights() -> None:
    a = np.array([0.0, 2.0], dtype=np.float32)
    b = np.array([4.0, 6.0], dtype=np.float32)
    np.testing.assert_array_equal(fedavg([a, b]), [2.0, 4.0])
    np.testing.assert_array_equal(fedavg([a, b], [3, 1]), [1.0, 3.0])
    with pytest.raises(TrainConfigError):
        fedavg([a, b], [1.0])
    with pytest.raises(TrainConfigError):
        fedavg([a, b[:1]])

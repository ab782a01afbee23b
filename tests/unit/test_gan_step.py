"""Separable G/D step == the joint-graph computation (feedback and G update)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from synthreg.data import Schema
from synthreg.gan.encoder import TabularEncoder
from synthreg.gan.models import ModelConfig, build_models
from synthreg.gan.step import (
    BatchShapeError,
    DiscriminatorSide,
    FeedbackShapeError,
    GeneratorSide,
    NonFiniteFeedbackError,
    NoPendingBatchError,
    OptimConfig,
)

CFG = ModelConfig(noise_dim=16, gen_dims=(32, 32), dis_dims=(32,), pac=5, tau=0.2)
OPT = OptimConfig()
BATCH = 40


@pytest.fixture()
def encoder() -> TabularEncoder:
    return TabularEncoder(Schema.bundled("rotterdam"))


def _real(encoder: TabularEncoder) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(-1, 1, (BATCH, encoder.output_dim)).astype(np.float32)


def test_feedback_and_g_update_equal_joint_graph(encoder: TabularEncoder) -> None:
    gen, dis = build_models(encoder.output_dim, CFG, seed=3)
    gen_j, dis_j = copy.deepcopy(gen), copy.deepcopy(dis)
    real = _real(encoder)

    # separable: G process -> arrays -> D process -> arrays -> G process
    g_side = GeneratorSide(gen, encoder.output_info, CFG.tau, OPT)
    d_side = DiscriminatorSide(dis, OPT, seed=11)
    fake = g_side.make_fake(BATCH, seed=42)
    result = d_side.step(fake.array, real)
    g_side.apply_feedback(result.feedback)

    # joint graph: one autograd graph from G's parameters through D
    g_joint = GeneratorSide(gen_j, encoder.output_info, CFG.tau, OPT)
    fake_j = g_joint.forward(BATCH, seed=42)
    np.testing.assert_array_equal(fake_j.detach().numpy(), fake.array)
    DiscriminatorSide(dis_j, OPT, seed=11).step(fake_j.detach().numpy(), real)  # same D update
    g_loss = -dis_j(fake_j).mean()
    (grad_fake,) = torch.autograd.grad(g_loss, fake_j, retain_graph=True)
    assert float(g_loss.detach()) == pytest.approx(result.g_loss, abs=1e-6)
    np.testing.assert_allclose(result.feedback, grad_fake.numpy(), rtol=1e-6, atol=1e-9)
    assert np.abs(result.feedback).max() > 0

    g_joint.optimizer.zero_grad()
    g_loss.backward()
    g_joint.optimizer.step()
    for (name, p), (_, q) in zip(gen.named_parameters(), gen_j.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7, msg=name)
    for (name, p), (_, q) in zip(dis.named_parameters(), dis_j.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)


def test_d_step_changes_d_and_reports_finite_losses(encoder: TabularEncoder) -> None:
    gen, dis = build_models(encoder.output_dim, CFG, seed=0)
    before = [p.detach().clone() for p in dis.parameters()]
    g_side = GeneratorSide(gen, encoder.output_info, CFG.tau, OPT)
    res = DiscriminatorSide(dis, OPT, seed=0).step(g_side.make_fake(BATCH, 1).array,
                                                   _real(encoder))
    assert np.isfinite(res.d_loss) and np.isfinite(res.g_loss)
    assert res.feedback.dtype == np.float32 and res.feedback.shape == (BATCH, encoder.output_dim)
    assert any(not torch.equal(a, b) for a, b in zip(before, dis.parameters(), strict=True))


def test_make_fake_is_a_function_of_weights_and_seed(encoder: TabularEncoder) -> None:
    gen, _ = build_models(encoder.output_dim, CFG, seed=0)
    side = GeneratorSide(gen, encoder.output_info, CFG.tau, OPT)
    a, b, c = side.make_fake(BATCH, 5), side.make_fake(BATCH, 5), side.make_fake(BATCH, 6)
    np.testing.assert_array_equal(a.array, b.array)
    assert not np.array_equal(a.array, c.array)
    assert a.noise_seed == 5 and np.isfinite(a.array).all()


def test_protocol_errors(encoder: TabularEncoder) -> None:
    gen, dis = build_models(encoder.output_dim, CFG, seed=0)
    side = GeneratorSide(gen, encoder.output_info, CFG.tau, OPT)
    with pytest.raises(NoPendingBatchError):
        side.apply_feedback(np.zeros((BATCH, encoder.output_dim), dtype=np.float32))
    fake = side.make_fake(BATCH, 1)
    with pytest.raises(FeedbackShapeError):
        side.apply_feedback(np.zeros((BATCH, 3), dtype=np.float32))
    bad = np.zeros_like(fake.array)
    bad[0, 0] = np.nan
    with pytest.raises(NonFiniteFeedbackError):
        side.apply_feedback(bad)
    d_side = DiscriminatorSide(dis, OPT, seed=0)
    with pytest.raises(BatchShapeError):
        d_side.step(fake.array[:7], _real(encoder)[:7])  # not a multiple of pac
    with pytest.raises(BatchShapeError):
        d_side.step(fake.array, _real(encoder)[:, :5])

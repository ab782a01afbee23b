"""Differential privacy on the discriminator (issue 12): the accountant against Opacus's
published numbers, the round cap, the DP-SGD step's gradients, clipping bound and
determinism, and a tiny DP federation."""

from __future__ import annotations

import hmac
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from synthreg.data import Schema, load_dataset, split_registries
from synthreg.data.hashing import array_bytes, array_sha256
from synthreg.gan.accountant import epsilon_spent, noise_for_budget, rounds_within_budget
from synthreg.gan.dp import DPDiscriminatorSide, DPSettings, PoissonSampler, commitment_key, make_discriminator
from synthreg.gan.federated import TrainConfig, TrainConfigError, train_federated
from synthreg.gan.models import build_models
from synthreg.gan.step import OptimConfig, RealBatchSampler

DP = dict(dp_epsilon=3.0, dp_delta=1e-5, dp_noise_multiplier=1.0, dp_sample_rate=0.1)
TINY_DP = TrainConfig(rounds=50, local_iters=3, batch_size=20, noise_dim=8, gen_dims=(16, 16), dis_dims=(16,),
                      pac=1, seed=5, **DP)  # type: ignore[arg-type]


def test_epsilon_matches_opacus_published_value() -> None:
    # opacus/tests/accountants_test.py::test_rdp_accountant: sigma 1.5, q 0.04, 90 epochs (2,250 steps),
    # delta 1e-5 -> epsilon 7.32911117143; ::test_get_noise_multiplier_rdp_steps: epsilon 8, 2,000 steps -> 1.3562
    assert epsilon_spent(1.5, 0.04, 2250, 1e-5) == pytest.approx(7.32911117143, abs=1e-7)
    assert noise_for_budget(8.0, 1e-5, 0.04, 2000) == pytest.approx(1.3562, abs=1e-4)
    assert epsilon_spent(1.5, 0.04, 0, 1e-5) == 0.0


def test_rounds_capped_at_the_last_round_within_budget() -> None:
    cap = TINY_DP.trained_rounds()
    assert 1 <= cap < TINY_DP.rounds
    assert TINY_DP.epsilon_after(cap * 3) <= 3.0 < TINY_DP.epsilon_after((cap + 1) * 3)
    assert rounds_within_budget(100.0, 1e-5, 1.0, 0.1, 3, 7) == 7  # a budget larger than the run: no cap


def test_config_without_dp_is_unchanged_and_dp_is_checked() -> None:
    assert not any(k.startswith("dp_") for k in TrainConfig().to_dict())
    assert TrainConfig().trained_rounds() == 120 and TrainConfig().dp is None
    assert TrainConfig.from_dict(TINY_DP.to_dict()) == TINY_DP
    with pytest.raises(TrainConfigError, match="needs all of"):
        TrainConfig(pac=1, dp_epsilon=1.0)
    with pytest.raises(TrainConfigError, match="pac = 1"):
        replace(TINY_DP, pac=5)
    with pytest.raises(TrainConfigError, match="already spends"):
        replace(TINY_DP, dp_epsilon=0.01)
    with pytest.raises(TrainConfigError, match="dp_delta"):
        replace(TINY_DP, dp_delta=1.5)


def _side(sigma: float, clip: float, n_expected: float, gp_weight: float = 10.0) -> DPDiscriminatorSide:
    _, dis = build_models(6, TINY_DP.model_config(), 1)
    optim = OptimConfig(lr_d=0.0, gp_weight=gp_weight)  # keeps the step's gradient in p.grad
    return DPDiscriminatorSide(dis, optim, 7, DPSettings(sigma, clip, 0.5), n_expected)


def _grads(d: DPDiscriminatorSide) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in d.discriminator.parameters() if p.grad is not None])


def test_dp_step_without_noise_or_clipping_is_the_wgan_gp_gradient() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(8, 6)).astype(np.float32), rng.normal(size=(4, 6)).astype(np.float32)
    d = _side(0.0, 1e9, 8.0)
    d.step(fake, real)
    # the same loss by plain autograd: each record with its fake row and mixing weight, drawn in that order
    draws = torch.Generator().manual_seed(7)
    idx = torch.randint(4, (8,), generator=draws)
    alpha = torch.rand((8, 1), generator=draws)
    _, dis = build_models(6, TINY_DP.model_config(), 1)
    f, r = torch.from_numpy(fake)[idx], torch.from_numpy(real)
    mixed = (alpha * r + (1 - alpha) * f).requires_grad_(True)
    (gx,) = torch.autograd.grad(dis(mixed).sum(), mixed, create_graph=True)
    loss = (dis(f).sum() - dis(r).sum() + 10.0 * ((gx.norm(dim=1) - 1) ** 2).sum()) / 8.0
    loss.backward()
    expected = torch.cat([p.grad.flatten() for p in dis.parameters() if p.grad is not None])
    torch.testing.assert_close(_grads(d), expected, rtol=1e-4, atol=1e-5)


def test_clipped_update_vanishes_when_the_fakes_are_the_real_records() -> None:
    # G matching the data must leave the critic where it is, however hard the clipping: the
    # fake term is clipped with its real record (it was added unclipped next to clipped real
    # terms, a bias that pushed D(fake) down even without noise; issue 12, part 2)
    rows = np.random.default_rng(3).normal(size=(8, 6)).astype(np.float32)
    for c in (1e-3, 1.0, 1e9):
        d = _side(0.0, c, 8.0, gp_weight=0.0)
        d.step(np.repeat(rows[:1], 8, axis=0), np.repeat(rows[:1], 8, axis=0))
        assert float(_grads(d).abs().max()) < 1e-6
        moved = _side(0.0, c, 8.0, gp_weight=0.0)  # and a real batch unlike the fakes does move it
        moved.step(np.repeat(rows[:1], 8, axis=0), rows)
        assert float(_grads(moved).norm()) > min(c, 1.0) * 0.1


def test_one_record_moves_the_noiseless_gradient_by_at_most_c() -> None:
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(6, 6)).astype(np.float32), rng.normal(size=(6, 6)).astype(np.float32)
    c, n_expected = 0.05, 3.0
    a, b = _side(0.0, c, n_expected), _side(0.0, c, n_expected)
    a.step(fake, real)
    other = real.copy()
    other[5] = 100.0  # neighbouring batch: the last record replaced by an outlier
    b.step(fake, other)
    diff = float((_grads(a) - _grads(b)).norm())
    assert 0 < diff <= 2 * c / n_expected + 1e-6  # replace = remove + add: two clipped terms
    # the noise is sigma * C per coordinate, scaled like the sum
    noisy = _side(1.0, c, n_expected)
    noisy.step(fake, real)
    assert float((_grads(noisy) - _grads(a)).std()) == pytest.approx(c / n_expected, rel=0.2)


def test_poisson_sampler_rate_and_empty_batches() -> None:
    s = PoissonSampler(np.ones((1000, 3), dtype=np.float32), seed=2, sample_rate=0.2, commit_key=b"k" * 32)
    sizes = [s.sample(0).shape[0] for _ in range(50)]
    assert 150 < np.mean(sizes) < 250 and s.expected_batch == 200.0
    d = _side(1.0, 1.0, 5.0)
    res = d.step(np.zeros((4, 6), dtype=np.float32), np.zeros((0, 6), dtype=np.float32))
    assert np.isfinite(res.g_loss)


def test_a_dp_real_batch_commitment_is_keyed_by_the_registry_secret() -> None:
    """The ledger's real_sha256 of a DP step is an HMAC under a key from the registry's
    secret dp_seed: not the plain hash anyone could test candidate records against,
    the same for the same secret (the registry can open it), other for another secret."""
    encoded = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    plain = RealBatchSampler(encoded, seed=1)
    batch = plain.sample(10)
    assert plain.commitment(batch) == array_sha256(batch)  # without DP: unchanged
    _, real_a = make_discriminator(build_models(4, TINY_DP.model_config(), 5)[1], TINY_DP.optim_config(), 5, 0,
                                   encoded, TINY_DP.dp, dp_seed=11)
    _, real_b = make_discriminator(build_models(4, TINY_DP.model_config(), 5)[1], TINY_DP.optim_config(), 5, 0,
                                   encoded, TINY_DP.dp, dp_seed=12)
    assert real_a.commitment(batch) != array_sha256(batch)
    assert real_a.commitment(batch) == hmac.new(commitment_key(11, 0), array_bytes(batch), "sha256").hexdigest()
    assert real_a.commitment(batch) != real_b.commitment(batch)
    assert real_a.commitment(batch) != real_a.commitment(batch[:9])
    with pytest.raises(ValueError, match="32 bytes"):
        PoissonSampler(encoded, seed=1, sample_rate=0.1, commit_key=b"short")


@pytest.fixture(scope="module")
def frames() -> list[pd.DataFrame]:
    parts = split_registries(load_dataset("rotterdam"), 3, "non-iid", seed=0, by="year")
    return [p.head(120) for p in parts]


def test_dp_federation_stops_at_the_budget_and_is_reproducible_with_its_seeds(frames: list[pd.DataFrame]) -> None:
    schema = Schema.bundled("rotterdam")
    cfg = replace(TINY_DP, rounds=4, dp_epsilon=TINY_DP.epsilon_after(6) + 1e-9)  # exactly 2 rounds fit
    assert cfg.trained_rounds() == 2
    one = train_federated(frames, schema, cfg, progress=False, dp_seeds=[1, 2, 3])
    two = train_federated(frames, schema, cfg, progress=False, dp_seeds=[1, 2, 3])
    other = train_federated(frames, schema, cfg, progress=False, dp_seeds=[4, 5, 6])
    assert sorted({h.round for h in one.history}) == [0, 1]
    assert one.epsilon == pytest.approx(cfg.epsilon_after(6)) and one.epsilon <= cfg.dp_epsilon  # type: ignore[operator]
    np.testing.assert_array_equal(one.generator_vector(), two.generator_vector())
    assert not np.array_equal(one.generator_vector(), other.generator_vector())

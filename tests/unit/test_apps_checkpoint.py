"""Round checkpoints of the apps: exact round trip, damage detected, fallback to the previous one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthreg.apps.checkpoint import Checkpoints, adam_state, load_adam_state, numpy_rng_state, set_numpy_rng_state
from synthreg.gan.models import build_models
from synthreg.gan.step import DiscriminatorSide, OptimConfig, RealBatchSampler
from synthreg.gan.weights import state_dict_to_vector, vector_to_state_dict


def _side(seed: int = 1) -> tuple[DiscriminatorSide, RealBatchSampler]:
    from synthreg.gan.models import ModelConfig
    _, dis = build_models(12, ModelConfig(8, (16,), (16,), 2, 0.2), 0)
    real = RealBatchSampler(np.random.default_rng(0).normal(size=(50, 12)).astype(np.float32), seed)
    return DiscriminatorSide(dis, OptimConfig(), seed), real


def _state(d: DiscriminatorSide, real: RealBatchSampler) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    tensors = {"weights": torch.from_numpy(state_dict_to_vector(d.discriminator)),
               "gp_rng": d.rng.get_state(), **adam_state(d.optimizer, "adam")}
    return tensors, {"real_rng": numpy_rng_state(real.rng)}


def test_a_restored_discriminator_continues_bit_for_bit(tmp_path: Path) -> None:
    d, real = _side()
    fake = np.random.default_rng(1).normal(size=(10, 12)).astype(np.float32)
    d.step(fake, real.sample(10))  # Adam moments and RNGs have moved
    store = Checkpoints(tmp_path)
    store.save(3, *_state(d, real))
    expected = [d.step(fake, real.sample(10)).feedback for _ in range(2)]

    ckpt = store.latest()
    assert ckpt is not None and ckpt.round == 3 and not ckpt.skipped
    d2, real2 = _side(seed=99)  # other RNG seeds: everything must come from the checkpoint
    vector_to_state_dict(d2.discriminator, ckpt.tensors["weights"].numpy())
    d2.rng.set_state(ckpt.tensors["gp_rng"])
    load_adam_state(d2.optimizer, ckpt.tensors, "adam")
    set_numpy_rng_state(real2.rng, ckpt.meta["real_rng"])  # type: ignore[arg-type]
    got = [d2.step(fake, real2.sample(10)).feedback for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    d, real = _side()
    store = Checkpoints(tmp_path, keep=2)
    for rnd in (1, 2, 3):
        store.save(rnd, *_state(d, real))
    assert store.rounds() == [2, 3]  # the two newest are kept
    path = tmp_path / "round-0000003.ckpt"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    ckpt = store.latest()
    assert ckpt is not None and ckpt.round == 2
    assert len(ckpt.skipped) == 1 and "round-0000003.ckpt does not match its sha256" in ckpt.skipped[0]
    (tmp_path / "round-0000002.ckpt").write_bytes(b"garbage")
    assert store.latest() is None


def test_an_event_checkpoint_of_another_ledger_is_dropped(tmp_path: Path) -> None:
    """A network re-created under the same registry state has other blocks under the
    same numbers: the app's event checkpoint is kept only for the ledger it was written for."""
    from synthreg.apps.base import checkpoint_for_ledger
    from synthreg.ledger.events import Checkpoint

    path = tmp_path / "merger.checkpoint.json"
    Checkpoint(path).save(7614, "tx-old")
    assert checkpoint_for_ledger(path, "aa") and not path.exists()  # written before the marker existed
    Checkpoint(path).save(12, "tx-1")
    assert not checkpoint_for_ledger(path, "aa") and Checkpoint(path).block_number == 12  # same ledger: kept
    assert checkpoint_for_ledger(path, "bb") and Checkpoint(path).block_number is None  # re-created: dropped
    assert not checkpoint_for_ledger(path, "bb")  # nothing to drop

"""Per-round checkpoints of an app's training state, so a restarted app resumes exactly.

Who calls: the generator and discriminator apps, at the start of every round
(after loading the agreed average) and once before the first; on start-up
in a run they already took part in, they restore the newest intact checkpoint
and replay the round from the ledger and the workspace (DESIGN.md §8).

Where data lives: ``state/checkpoints/<run>/<role>/round-<r>.ckpt`` in the
registry's state folder (next to the workspace, never shared with other
registries): the first line is the sha256 (hex) of the rest, the rest is a
safetensors file (weights, Adam moments, RNG states as tensors; small JSON
metadata). Writes are atomic (temp file, fsync, rename, fsync of the folder).
The two newest are kept.

What fails when: a checkpoint whose bytes no longer hash to its first line, or
that does not parse, is skipped with a warning naming it and the previous one
is used (:meth:`Checkpoints.latest` reports which were skipped); none left →
``None`` (the app starts the run from its beginning, which the ledger then
checks: an already recorded step that does not match what the app recomputes
is :class:`ResumeMismatchError`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

__all__ = [
    "Checkpoint",
    "Checkpoints",
    "ResumeMismatchError",
    "adam_state",
    "load_adam_state",
    "numpy_rng_state",
    "set_numpy_rng_state",
]


class ResumeMismatchError(RuntimeError):
    """What a resumed app recomputed differs from what the ledger holds for that step."""


@dataclass
class Checkpoint:
    round: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    """damaged newer checkpoints that were passed over, with the reason"""


class Checkpoints:
    """The round checkpoints of one app in one run, in folder ``root``."""

    def __init__(self, root: Path, keep: int = 2) -> None:
        self.root, self.keep = root, keep

    def _path(self, rnd: int) -> Path:
        return self.root / f"round-{rnd:07d}.ckpt"

    def save(self, rnd: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
        """Write the checkpoint of round ``rnd`` atomically; prune older ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        body = safetensors.torch.save({k: v.detach().contiguous() for k, v in tensors.items()},
                                      metadata={"meta": json.dumps(meta, sort_keys=True), "round": str(rnd)})
        data = hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body
        path = self._path(rnd)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        for old in self.rounds()[:-self.keep]:
            self._path(old).unlink(missing_ok=True)
        return path

    def rounds(self) -> list[int]:
        if not self.root.exists():
            return []
        return sorted(int(p.stem.split("-")[1]) for p in self.root.glob("round-*.ckpt"))

    def load(self, rnd: int) -> Checkpoint:
        """Round ``rnd``'s checkpoint, checked against its hash (ValueError if damaged)."""
        raw = self._path(rnd).read_bytes()
        head, sep, body = raw.partition(b"\n")
        if not sep or hashlib.sha256(body).hexdigest().encode("ascii") != head:
            raise ValueError(f"{self._path(rnd)} does not match its sha256 (damaged)")
        try:
            tensors = safetensors.torch.load(body)
            header_len = int.from_bytes(body[:8], "little")
            meta = json.loads(json.loads(body[8:8 + header_len])["__metadata__"]["meta"])
        except (ValueError, KeyError, OSError) as exc:
            raise ValueError(f"{self._path(rnd)} does not parse: {exc}") from exc
        return Checkpoint(rnd, tensors, meta)

    def latest(self) -> Checkpoint | None:
        """The newest intact checkpoint; damaged newer ones are listed in ``skipped``."""
        skipped: list[str] = []
        for rnd in reversed(self.rounds()):
            try:
                ckpt = self.load(rnd)
            except ValueError as exc:
                skipped.append(str(exc))
                continue
            ckpt.skipped = skipped
            return ckpt
        return None


def adam_state(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """An Adam optimiser's per-parameter state as flat tensors (``<prefix>/<i>/<key>``)."""
    out: dict[str, torch.Tensor] = {}
    for idx, st in optimizer.state_dict()["state"].items():
        for key, value in st.items():
            out[f"{prefix}/{idx}/{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return out


def load_adam_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Restore what :func:`adam_state` saved (hyper-parameters come from the run's config)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        head, _, rest = name.partition("/")
        if head != prefix:
            continue
        idx, _, key = rest.partition("/")
        state.setdefault(int(idx), {})[key] = value.clone()
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def numpy_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def set_numpy_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state

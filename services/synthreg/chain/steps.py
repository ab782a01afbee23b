"""Accountable training steps: every G/D hand-over goes through the ledger (DESIGN.md §3).

Who calls: :func:`synthreg.gan.federated.train_federated` through its ``step``
hook: the single-process reference path (tests, ``bench/step_latency.py``,
``bench/services_overhead.py``). One :class:`LedgerSteps` serves every
registry; each registry's generator and discriminator sign with their *own*
identities. The registries' generator and discriminator apps
(:mod:`synthreg.apps`) write the same records from separate processes.

One local iteration of registry r (the paper's Figure 3, flows 1–3):

1. generator: makes the fake batch (seeded), stores it in r's workspace and
   submits ``RecordGeneratorStep`` (fake hash, generator weights hash, seed);
2. discriminator: reads the fake batch's hash **from the ledger**, loads the
   batch from the workspace and checks it against that hash (a mismatch is
   recorded with ``RecordFault`` and stops the run with
   :class:`StepFaultError`); samples a real batch, updates D, stores the
   generator feedback and submits ``RecordDiscriminatorStep`` (real batch hash,
   feedback hash, losses, discriminator weights hash);
3. generator: reads the feedback hash from the ledger, loads and checks the
   feedback, and applies it.

Where data lives: fake batches and feedback in the registry's workspace (real
batches never leave the discriminator: only their hash is recorded); hashes on
``gan``. Fake batches and feedback of rounds not in ``keep_rounds`` are removed
once consumed — their hashes stay on the ledger — so a 3,600-step run does not
leave half a gigabyte behind.

Errors: :class:`StepFaultError` (an artefact did not match its ledger hash; the
fault is on the ledger), :class:`synthreg.chain.secagg.AggregationLedgerError`-
style typed ledger errors via :class:`StepLedgerError` (e.g. a step out of order
is refused by the chaincode with PRECONDITION_FAILED).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthreg.data.hashing import array_bytes, array_sha256
from synthreg.gan.federated import StepContext
from synthreg.gan.step import DiscriminatorSide, DStepResult, GeneratorSide, RealBatchSampler
from synthreg.gan.weights import state_dict_to_vector
from synthreg.ledger import ChaincodeError, Contract, GatewayError
from synthreg.ledger.errors import CommitError
from synthreg.ledger.sync import submit_synced
from synthreg.workspace import Workspace, WorkspaceError

__all__ = ["LedgerSteps", "RegistryStepClients", "StepFaultError", "StepLedgerError"]


class StepLedgerError(Exception):
    """A step-record call failed; ``code`` is the chaincode's error code ("" outside it)."""

    def __init__(self, fn: str, msp: str, code: str, detail: str) -> None:
        super().__init__(f"{fn} for {msp} failed: {detail}")
        self.fn, self.msp, self.code, self.detail = fn, msp, code, detail

    @classmethod
    def of(cls, fn: str, msp: str, exc: GatewayError | CommitError) -> StepLedgerError:
        """From a failed ledger call, with the code the ledger client parsed."""
        if isinstance(exc, ChaincodeError):
            return cls(fn, msp, exc.chaincode.code, exc.chaincode.detail)
        return cls(fn, msp, "", str(exc))


class StepFaultError(Exception):
    """An artefact handed over between G and D did not match the hash on the ledger."""

    def __init__(self, msp: str, rnd: int, it: int, kind: str, detail: str) -> None:
        super().__init__(f"{msp} round {rnd} iter {it}: {kind}: {detail} (recorded on the ledger)")
        self.msp, self.round, self.iter, self.kind = msp, rnd, it, kind


def _weights_sha(module: Any) -> str:
    return array_sha256(state_dict_to_vector(module))


@dataclass(frozen=True)
class RegistryStepClients:
    """One registry's side: its generator's and discriminator's Contracts (each
    signing as that app's identity) and its workspace."""

    msp: str
    generator: Contract
    discriminator: Contract
    workspace: Workspace


class LedgerSteps:
    """The :data:`synthreg.gan.federated.StepRunner` that records every step on ``gan``.

    ``registries[i]`` is registry ``i`` of the training run; ``participants``
    are the MSP ids whose peers must have a step's block before the other app
    goes on (the endorsers of the next step).
    """

    def __init__(self, run: str, registries: Sequence[RegistryStepClients], participants: Sequence[str],
                 keep_rounds: Collection[int] = ()) -> None:
        self.run = run
        self.registries = list(registries)
        self.participants = list(participants)
        self.keep_rounds = set(keep_rounds)
        self.tx_counts = {r.msp: 0 for r in registries}

    # -- ledger plumbing
    def _submit(self, contract: Contract, msp: str, fn: str, payload: Mapping[str, Any]) -> None:
        try:
            submit_synced(contract, fn, self.run, json.dumps(payload, sort_keys=True), orgs=self.participants)
        except (GatewayError, CommitError) as exc:
            raise StepLedgerError.of(fn, msp, exc) from exc
        self.tx_counts[msp] += 1

    def _step(self, contract: Contract, msp: str, rnd: int, it: int) -> dict[str, Any]:
        try:
            raw = contract.evaluate("GetStep", self.run, msp, str(rnd), str(it))
        except GatewayError as exc:
            raise StepLedgerError.of("GetStep", msp, exc) from exc
        step: dict[str, Any] = json.loads(raw)
        return step

    def _load(self, side: Contract, reg: RegistryStepClients, ctx: StepContext, kind: str,
              digest: str, shape: tuple[int, ...]) -> np.ndarray:
        """The artefact ``digest`` from the workspace, checked against it; a
        mismatch or a missing artefact is recorded as a fault and raised."""
        try:
            data = reg.workspace.get(digest)
        except WorkspaceError as exc:
            self._submit(side, reg.msp, "RecordFault", {
                "round": ctx.round, "iter": ctx.iter, "kind": kind, "expected": digest,
                "got": getattr(exc, "actual", "0" * 64), "detail": str(exc)[:1000]})
            raise StepFaultError(reg.msp, ctx.round, ctx.iter, kind, str(exc)) from exc
        return np.frombuffer(data, dtype="<f4").reshape(shape).copy()

    def _discard(self, reg: RegistryStepClients, rnd: int, *digests: str) -> None:
        if rnd not in self.keep_rounds:
            for d in digests:
                reg.workspace.discard(d)

    # -- one iteration
    def __call__(self, ctx: StepContext, g: GeneratorSide, d: DiscriminatorSide,
                 real: RealBatchSampler) -> DStepResult:
        reg = self.registries[ctx.registry]
        # 1. generator
        fake = g.make_fake(ctx.batch_size, ctx.noise_seed)
        fake_sha = reg.workspace.put(array_bytes(fake.array))
        self._submit(reg.generator, reg.msp, "RecordGeneratorStep", {
            "round": ctx.round, "iter": ctx.iter, "fake_sha256": fake_sha,
            "g_weights_sha256": _weights_sha(g.generator), "noise_seed": ctx.noise_seed,
            "batch_size": ctx.batch_size})
        # 2. discriminator: the batch it trains on is the one whose hash is on the ledger
        on_ledger = self._step(reg.discriminator, reg.msp, ctx.round, ctx.iter)["generator"]
        fake_arr = self._load(reg.discriminator, reg, ctx, "fake_hash_mismatch", on_ledger["fake_sha256"],
                              fake.array.shape)
        real_batch = real.sample_for(fake_arr)
        res = d.step(fake_arr, real_batch)
        feedback_sha = reg.workspace.put(array_bytes(res.feedback))
        self._submit(reg.discriminator, reg.msp, "RecordDiscriminatorStep", {
            "round": ctx.round, "iter": ctx.iter, "fake_sha256": on_ledger["fake_sha256"],
            "real_sha256": real.commitment(real_batch), "feedback_sha256": feedback_sha,
            "d_weights_sha256": _weights_sha(d.discriminator), "d_loss": res.d_loss, "g_loss": res.g_loss})
        # 3. generator applies the feedback whose hash is on the ledger
        d_rec = self._step(reg.generator, reg.msp, ctx.round, ctx.iter)["discriminator"]
        feedback = self._load(reg.generator, reg, ctx, "feedback_hash_mismatch", d_rec["feedback_sha256"],
                              res.feedback.shape)
        g.apply_feedback(feedback)
        self._discard(reg, ctx.round, fake_sha, feedback_sha)
        return res

    def stop(self, rnd: int, it: int, g_losses: Mapping[str, float], reason: str = "budget") -> None:
        """Each registry's generator records the end of its training after the
        completed step (``rnd``, ``it``); the chaincode refuses every later step."""
        for reg in self.registries:
            self._submit(reg.generator, reg.msp, "RecordStop", {
                "round": rnd, "iter": it, "reason": reason, "g_loss": float(g_losses[reg.msp])})

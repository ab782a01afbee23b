"""A registry's discriminator app (flows 3, 4a, 4b, 5a, 5b, 9b): its own process.

Who runs it: ``synthreg app discriminator --org ORG --data CSV`` (started by
``registry up``), signing as that org's *discriminator* identity. It is the only
app that trains on the registry's real records; they never leave it (only the
hash of each real batch is recorded).

Per run: validates its CSV against the run's schema (a violation marks the run
failed for this app, naming row and column; nothing is written), waits for the
consortium encoder, builds D and its real-batch sampler from the run's seeds;
then for each local iteration, on its generator's ``GeneratorStep`` event:
loads the fake batch whose hash is on the ledger (a mismatch is recorded with
``RecordFault`` and stops the run), samples a real batch, updates D, stores the
feedback (and, on the round's last iteration, its weight vector) and submits
``RecordDiscriminatorStep``; in a run with a privacy budget it trains by DP-SGD
(:mod:`synthreg.gan.dp`) and after the round's last step records the epsilon
spent so far (``RecordPrivacySpend``). After each round it loads the agreed average
(flow 9b), unless the run averages the generator only (``averaged: generator``):
then this critic stays local and goes on with its own weights.
"""

from __future__ import annotations

import functools
import json
import secrets
from typing import Any

import torch

from synthreg.apps.anchored import AnchoredSteps
from synthreg.apps.base import App
from synthreg.apps.checkpoint import (
    ResumeMismatchError,
    adam_state,
    load_adam_state,
    numpy_rng_state,
    set_numpy_rng_state,
)
from synthreg.apps.events import Named
from synthreg.apps.generator import (
    checkpoints,
    generator_moved_past,
    load_checked,
    raise_recorded_fault,
    restore,
    wait_generator_step,
)
from synthreg.chain.anchor import StatementStore
from synthreg.chain.runs import RunRecord, RunSpec
from synthreg.data.hashing import array_bytes
from synthreg.data.schema import load_registry_csv
from synthreg.gan.accountant import ACCOUNTANT
from synthreg.gan.dp import make_discriminator
from synthreg.gan.models import build_models
from synthreg.gan.step import DiscriminatorSide, RealBatchSampler
from synthreg.gan.weights import state_dict_to_vector, vector_to_state_dict
from synthreg.workspace import sha256_hex

__all__ = ["DiscriminatorApp"]


class DiscriminatorApp(App):
    role = "discriminator"

    def warm_up(self) -> None:
        from synthreg.gan.step import warm_up_torch

        warm_up_torch()  # the first optimizer's lazy torch._dynamo import, paid before any run

    @staticmethod
    def _state(d: DiscriminatorSide, real: RealBatchSampler) -> dict[str, torch.Tensor]:
        """D's weights, Adam moments and gradient-penalty RNG (the real sampler's
        numpy RNG state goes in the metadata)."""
        return {"weights": torch.from_numpy(state_dict_to_vector(d.discriminator)), "gp_rng": d.rng.get_state(),
                **adam_state(d.optimizer, "adam")}

    def _steps_before(self, run: str, spec: RunSpec, rnd: int) -> int:
        """D steps this registry recorded before round ``rnd`` (its previous spend's
        count: a registry left out of a round took fewer than ``local_iters``)."""
        if spec.config.dp is None:
            return 0
        for earlier in range(rnd - 1, -1, -1):  # rounds it was left out of before a step have none
            spend = self.evaluate_or_none("GetPrivacySpend", run, self.msp, str(earlier))
            if spend is not None:
                return int(spend["steps"])
        return 0

    def _record_spend(self, spec: RunSpec, run: str, rnd: int, it: int, steps: int) -> None:
        """DP runs: the epsilon spent after ``steps`` D steps (RecordPrivacySpend), once."""
        cfg = spec.config
        if cfg.dp is None or self.evaluate_or_none("GetPrivacySpend", run, self.msp, str(rnd)) is not None:
            return
        self.submit(spec, "RecordPrivacySpend", run, json.dumps({
            "round": rnd, "iter": it, "steps": steps, "epsilon": cfg.epsilon_after(steps), "delta": cfg.dp_delta,
            "noise_multiplier": cfg.dp_noise_multiplier, "sample_rate": cfg.dp_sample_rate,
            "max_grad_norm": cfg.dp_max_grad_norm, "accountant": ACCOUNTANT}, sort_keys=True))

    def _moving_past(self, run: str, rnd: int) -> Named:
        """This registry's events that can move its generator's head past round ``rnd``."""
        return Named(frozenset({"GeneratorRoot", "TrainingStopped"}),
                     lambda ev: ev.run == run and ev.payload.get("msp") == self.msp
                     and (ev.name == "TrainingStopped" or (ev.round is not None and ev.round > rnd)))

    def _generator_step(self, run: str, rnd: int, it: int, anchored: AnchoredSteps | None) -> dict[str, Any] | None:
        """G's step (``rnd``, ``it``) once it is there: its ledger record, or in an
        anchored run ``{}`` once its signed statement is in the workspace; None once G
        left the round instead (it went on without the registry: t of n; in an anchored
        run G says so in the workspace, :meth:`StatementStore.mark_left`). D never
        decides this itself, so G and D cannot disagree. Raises :class:`StepFaultError`
        if G recorded a fault."""
        if anchored is None:
            return wait_generator_step(self, run, rnd, it)
        statements = StatementStore(self.workspace.root)

        def moved_on() -> bool | None:
            # G's head asked once per process and run, then only after G's stop or a root of a
            # later round: G's head moves past this round only with one of those, and each
            # event after the last ask is in the feed (issue 11: one GetStepHead a round less).
            raise_recorded_fault(self, run, rnd, it)
            asked = self._past_asked.get(run)
            if asked is not None and not self.feed.seen_since(asked, self._moving_past(run, rnd)):
                return None
            self._past_asked = {run: self.feed.mark()}  # before the ask: a later event asks again
            return True if generator_moved_past(self, run, rnd) else None

        def local() -> bool | None:  # G's statement, or G's word that it left the round (no head moves in anchored)
            if statements.exists(run, rnd, it, "generator"):
                return False
            return True if statements.left(run, rnd, "generator") else None

        left = self.wait_local(local, moved_on,
                               self.mine(run, "GeneratorRoot", "TrainingStopped", "StepFault"),
                               f"the generator's statement of round {rnd} iter {it}", run,
                               watch=statements.round_dir(run, rnd))
        return None if left else {}

    def run_one(self, record: RunRecord, spec: RunSpec) -> None:
        run, cfg = record.run, spec.config
        if self.settings.data is None:
            raise ValueError("the discriminator needs its registry's --data CSV")
        r = spec.registry_index(self.msp)
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        schema = spec.schema()
        frame = load_registry_csv(self.settings.data, schema)
        encoder = self.agreed_encoder(run, schema, cfg.bins, cfg.levels_of)
        gen, dis = build_models(encoder.output_dim, cfg.model_config(encoder.schema), cfg.seed)
        n_g = state_dict_to_vector(gen).size
        del gen
        ckpt = restore(self, run)
        # DP: sampling and noise from this registry's secret, kept in its checkpoints (never on the ledger)
        dp_seed = None if cfg.dp is None else int(ckpt.meta["dp_seed"]) if ckpt else secrets.randbits(63)
        span = None if cfg.condition_on is None else encoder.levels_span(cfg.condition_on)
        d, real = make_discriminator(dis, cfg.optim_config(), cfg.seed, r, encoder.encode(frame), cfg.dp, dp_seed,
                                     span)
        meta = {} if dp_seed is None else {"dp_seed": dp_seed}
        shape = (cfg.batch_size, encoder.output_dim)
        last = spec.local_iters - 1
        store = checkpoints(self, run)
        first = 0
        if ckpt is not None:
            vector_to_state_dict(dis, ckpt.tensors["weights"].numpy())
            load_adam_state(d.optimizer, ckpt.tensors, "adam")
            d.rng.set_state(ckpt.tensors["gp_rng"])
            set_numpy_rng_state(real.rng, ckpt.meta["real_rng"])
            first = ckpt.round
        else:
            store.save(0, self._state(d, real), {"real_rng": numpy_rng_state(real.rng), **meta})
        steps = self._steps_before(run, spec, first)
        anchored = AnchoredSteps(self, spec, run) if spec.step_records == "anchored" else None
        statement: dict[str, Any] = {}
        for rnd in range(first, spec.rounds):
            if rnd > 0 and self.stops_after(run, spec, rnd - 1):  # decided from the ledger (also on resume)
                break
            left = False
            for it in range(spec.local_iters):
                self.set_status(phase="step", round=rnd, iter=it)
                g_rec = self._generator_step(run, rnd, it, anchored)
                if g_rec is None:
                    left = True
                    if it > 0:  # the steps taken before leaving are spent too
                        self._record_spend(spec, run, rnd, it - 1, steps)
                    break
                if anchored is not None:  # G's signed statement, checked, instead of its ledger record
                    g_rec, g_signed = anchored.receive(rnd, it)
                    fake_sha = str(g_rec["fake_sha256"])
                    fake = anchored.load(rnd, it, "fake_hash_mismatch", g_signed, fake_sha, shape)
                    recorded: Any = None
                else:
                    recorded = (self.evaluate_or_none("GetStep", run, self.msp, str(rnd), str(it)) or {}).get(
                        "discriminator")
                    fake_sha = str(g_rec["fake_sha256"])
                    fake = load_checked(self, spec, run, rnd, it, "fake_hash_mismatch", fake_sha, shape,
                                        replaying=recorded is not None)
                real_batch = real.sample_for(fake)
                res = d.step(fake, real_batch)
                feedback_sha = self.workspace.put(array_bytes(res.feedback))
                d_bytes = array_bytes(state_dict_to_vector(dis))
                d_sha = self.workspace.put(d_bytes) if it == last else sha256_hex(d_bytes)
                statement = {"round": rnd, "iter": it, "fake_sha256": fake_sha,
                             "real_sha256": real.commitment(real_batch), "feedback_sha256": feedback_sha,
                             "d_weights_sha256": d_sha, "d_loss": res.d_loss, "g_loss": res.g_loss}
                if anchored is not None:
                    anchored.hand_over(rnd, it, statement)
                elif recorded is None:
                    self.submit(spec, "RecordDiscriminatorStep", run, json.dumps(statement, sort_keys=True),
                                landed=functools.partial(self._step_landed, run, rnd, it, "discriminator",
                                                         {"feedback_sha256": feedback_sha, "d_weights_sha256": d_sha}))
                elif (recorded["feedback_sha256"], recorded["d_weights_sha256"]) != (feedback_sha, d_sha):
                    raise ResumeMismatchError(f"round {rnd} iter {it}: replayed discriminator step differs from "
                                              "the recorded one")
                steps += 1
                if it == last:
                    self._record_spend(spec, run, rnd, it, steps)
            if anchored is not None and not left:  # G's root first (checked against what G sent), then D's
                anchored.counterpart_root(rnd, spec.local_iters, restarted=rnd == first)
                losses = [float(st.fields["g_loss"]) for st in anchored.statements(rnd, "discriminator",
                                                                                   spec.local_iters)]
                anchored.anchor(rnd, spec.local_iters, {
                    "fake_sha256": statement["fake_sha256"], "feedback_sha256": statement["feedback_sha256"],
                    "d_weights_sha256": statement["d_weights_sha256"], "g_loss_mean": sum(losses) / len(losses)},
                    restarted=rnd == first)
            if left:  # G was left out of this round (t of n) and goes on from the agreed average: so does D
                self.set_status(phase="left out", round=rnd, iter=None, force=True)
            else:
                self.set_status(phase="merge", round=rnd, iter=None, force=True)
            avg, _ = self.agreed_average(run, rnd, run, spec.threshold, by_events=True)
            if not cfg.generator_only:  # else this critic stays local: it goes on with its own weights
                vector_to_state_dict(dis, avg[n_g:])
            store.save(rnd + 1, self._state(d, real), {"real_rng": numpy_rng_state(real.rng), **meta})
        self.set_status(phase="stopped-run", force=True)

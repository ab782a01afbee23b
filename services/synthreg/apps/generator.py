"""A registry's generator app (the paper's flows 1, 2a, 2b, 6, 9a): its own process.

Who runs it: ``synthreg app generator --org ORG`` (started by ``registry up``),
signing as that org's *generator* identity. It never reads real data.

Per run it takes part in (learnt from ``RunStarted``; the spec from ``GetRun``):

1. waits for the consortium encoder (the merger's secure sum of histograms;
   :meth:`App.agreed_encoder`) and builds G from the run's seed, like every
   other registry;
2. per round, per local iteration: makes the seeded fake batch, stores it in
   the workspace and submits ``RecordGeneratorStep`` (flows 1, 2a); waits for
   its discriminator's ``DiscriminatorStep`` event, loads the feedback whose
   hash is on the ledger (a mismatch is recorded with ``RecordFault`` and stops
   the run, :class:`StepFaultError`) and applies it (flows 2b, 6);
3. at the end of the round stores its weight vector and puts the round's
   local update (its own and its discriminator's weight hashes) in the
   workspace: the merger's cue (flow 7), which records it with its ``Submit``
   (issue 11: one transaction per registry and round fewer than the generator's
   own ``RecordLocalUpdate``, whose commit the merger waited for);
4. loads the agreed average from the workspace on the round's agreement
   (flow 9a) and goes on; after the last round records ``RecordStop``.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
from typing import Any

import numpy as np
import torch

from synthreg.apps.anchored import AnchoredSteps
from synthreg.apps.base import App
from synthreg.apps.checkpoint import Checkpoint, Checkpoints, ResumeMismatchError, adam_state, load_adam_state
from synthreg.chain.anchor import StatementStore
from synthreg.chain.runs import RunRecord, RunSpec
from synthreg.data.hashing import array_bytes
from synthreg.gan.condition import Condition, ConditionError
from synthreg.gan.encoder import TabularEncoder
from synthreg.gan.models import build_models
from synthreg.gan.step import GeneratorSide, derive_seed
from synthreg.gan.weights import state_dict_to_vector, vector_to_state_dict
from synthreg.workspace import WorkspaceError, sha256_hex

__all__ = ["GeneratorApp", "StepFaultError", "checkpoints", "discard_round", "generator_moved_past", "load_checked",
           "raise_recorded_fault", "restore", "wait_generator_step", "wait_step"]

log = logging.getLogger("synthreg.apps")


class StepFaultError(Exception):
    """An artefact handed over between G and D did not match the hash on the ledger
    (the fault is recorded on the ledger before this is raised)."""

    def __init__(self, msp: str, rnd: int, it: int, kind: str, detail: str) -> None:
        super().__init__(f"{msp} round {rnd} iter {it}: {kind}: {detail} (recorded on the ledger)")
        self.msp, self.round, self.iter, self.kind = msp, rnd, it, kind


def load_checked(app: App, spec: RunSpec, run: str, rnd: int, it: int, kind: str, digest: str,
                 shape: tuple[int, ...], replaying: bool = False) -> np.ndarray:
    """The artefact ``digest`` from the registry's workspace; a missing or altered
    one is recorded as a fault on the ledger and raised — unless the app is
    ``replaying`` a step already recorded (after a restart): then nothing is
    recorded and :class:`ResumeMismatchError` says the step cannot be replayed."""
    try:
        data = app.workspace.get(digest)
    except WorkspaceError as exc:
        if replaying:
            raise ResumeMismatchError(f"{app.msp} round {rnd} iter {it}: cannot replay the recorded step: "
                                      f"{exc}") from exc
        app.submit(spec, "RecordFault", run, json.dumps({
            "round": rnd, "iter": it, "kind": kind, "expected": digest,
            "got": getattr(exc, "actual", "0" * 64), "detail": str(exc)[:1000]}, sort_keys=True))
        raise StepFaultError(app.msp, rnd, it, kind, str(exc)) from exc
    return np.frombuffer(data, dtype="<f4").reshape(shape).copy()


def raise_recorded_fault(app: App, run: str, rnd: int, it: int) -> None:
    """Raise :class:`StepFaultError` if an app of this registry recorded a fault in
    ``run`` (its ``StepFault`` event was seen): the registry cannot go on in the run."""
    fault = app.feed.seen(app.mine(run, "StepFault"))
    if fault is not None:
        raise StepFaultError(app.msp, int(fault.payload.get("round", rnd)), int(fault.payload.get("iter", it)),
                             str(fault.payload.get("kind", "fault")), "recorded by another app of this registry")


def generator_moved_past(app: App, run: str, rnd: int) -> bool:
    """Whether this registry's generator is past round ``rnd``: its head is a later
    round's step (or root), or its stop (it left the round: t of n)."""
    head = app.evaluate_or_none("GetStepHead", run, app.msp) or {}
    return bool(head) and (int(head["round"]) > rnd or head.get("phase") == "stopped")


def _wait_record(app: App, run: str, rnd: int, it: int, side: str, until_left: bool) -> dict[str, Any]:
    event = {"generator": "GeneratorStep", "discriminator": "DiscriminatorStep"}[side]

    def ready() -> dict[str, Any] | None:
        raise_recorded_fault(app, run, rnd, it)
        record = (app.evaluate_or_none("GetStep", run, app.msp, str(rnd), str(it)) or {}).get(side)
        if record:
            return dict(record)
        return {} if until_left and generator_moved_past(app, run, rnd) else None

    names = (event, "StepFault", *(("TrainingStopped",) if until_left else ()))
    return dict(app.wait(ready, app.mine(run, *names), f"the {side} step of round {rnd} iter {it}", run))


def wait_step(app: App, spec: RunSpec, run: str, rnd: int, it: int, side: str) -> dict[str, Any]:
    """The ``side`` ("generator" or "discriminator") record of this registry's step
    (``rnd``, ``it``) once it is on the ledger (woken by its event); raises
    :class:`StepFaultError` if the registry's other app recorded a fault instead."""
    return _wait_record(app, run, rnd, it, side, False)


def wait_generator_step(app: App, run: str, rnd: int, it: int) -> dict[str, Any] | None:
    """As :func:`wait_step` for the generator's record, or None once the generator left
    the round instead (:func:`generator_moved_past`): the discriminator follows the
    generator's records and never decides this itself, so the two cannot disagree."""
    return _wait_record(app, run, rnd, it, "generator", True) or None


def checkpoints(app: App, run: str) -> Checkpoints:
    return Checkpoints(app.state / "checkpoints" / run.replace("/", "_") / app.role)


def restore(app: App, run: str) -> Checkpoint | None:
    """The newest intact checkpoint of this app in ``run``, saying which were skipped."""
    ckpt = checkpoints(app, run).latest()
    for reason in ckpt.skipped if ckpt else []:
        log.warning("%s %s: skipping a damaged checkpoint: %s", app.msp, app.role, reason)
    if ckpt is not None:
        log.info("%s %s: resuming run %s from the checkpoint of round %d", app.msp, app.role, run, ckpt.round)
    return ckpt


def discard_round(app: App, run: str, rnd: int) -> None:
    """Remove round ``rnd``'s fake batches and feedback from the workspace (their
    hashes stay on the ledger); kept until two rounds later, so that a restart can
    replay from either kept checkpoint."""
    for it in itertools.count():
        step = app.evaluate_or_none("GetStep", run, app.msp, str(rnd), str(it))
        if step is None:
            return
        for side, key in (("generator", "fake_sha256"), ("discriminator", "feedback_sha256")):
            if step.get(side):
                app.workspace.discard(str(step[side][key]))


class GeneratorApp(App):
    role = "generator"

    def warm_up(self) -> None:
        from synthreg.gan.step import warm_up_torch

        warm_up_torch()  # the first optimizer's lazy torch._dynamo import, paid before any run

    def own_g_loss(self, run: str, spec: RunSpec, rnd: int) -> float:
        """This registry's mean generator loss of round ``rnd``, as its discriminator recorded it."""
        if spec.step_records == "anchored":
            root = (self.evaluate_or_none("GetStepRoot", run, self.msp, str(rnd)) or {}).get("discriminator")
            return float(root["g_loss_mean"]) if root else 0.0
        steps = [self.evaluate_or_none("GetStep", run, self.msp, str(rnd), str(it)) or {}
                 for it in range(spec.local_iters)]  # a round left mid-way has fewer
        return float(np.mean([float(s["discriminator"]["g_loss"]) for s in steps if s.get("discriminator")]))

    def _stopped(self, run: str) -> bool:
        return (self.evaluate_or_none("GetStepHead", run, self.msp) or {}).get("phase") == "stopped"

    def _local_condition(self, run: str, encoder: TabularEncoder, column: str) -> Condition:
        """This registry's conditions: drawn at its own level frequencies, which its
        merger puts in the state folder (this app never reads records)."""
        path = self.condition_counts_file(run)

        def local() -> Condition | None:
            if not path.exists():
                return None
            raw = json.loads(path.read_text())
            if raw.get("column") != column:
                raise ConditionError(f"{path} holds counts of {raw.get('column')!r}, the run conditions on {column!r}")
            return Condition.from_counts(encoder, column, raw["counts"])

        return self.wait_local(local, lambda: None, lambda _ev: False,
                               "this registry's level counts of the conditioning column (from its merger)", run)

    def run_one(self, record: RunRecord, spec: RunSpec) -> None:
        run, cfg = record.run, spec.config
        r = spec.registry_index(self.msp)
        keep = set(spec.audit_rounds)
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        encoder = self.agreed_encoder(run, spec.schema(), cfg.bins, cfg.levels_of)
        gen, _ = build_models(encoder.output_dim, cfg.model_config(encoder.schema), cfg.seed)
        condition = None if cfg.condition_on is None else self._local_condition(run, encoder, cfg.condition_on)
        g = GeneratorSide(gen, encoder.output_info, cfg.tau, cfg.optim_config(), condition)
        n_g = state_dict_to_vector(gen).size
        shape = (cfg.batch_size, encoder.output_dim)
        store = checkpoints(self, run)
        first = 0
        ckpt = restore(self, run)
        if ckpt is not None:
            vector_to_state_dict(gen, ckpt.tensors["weights"].numpy())
            load_adam_state(g.optimizer, ckpt.tensors, "adam")
            first = ckpt.round
        else:
            store.save(0, {"weights": torch.from_numpy(state_dict_to_vector(gen))}, {})
        last = first - 1
        anchored = AnchoredSteps(self, spec, run) if spec.step_records == "anchored" else None
        updates = StatementStore(self.workspace.root)
        skipped: list[int] = []  # rounds left out of before training them
        self.progress.extra.pop("skipped_rounds", None)
        for rnd in range(first, spec.rounds):
            if rnd > 0 and self.stops_after(run, spec, rnd - 1):  # decided from the ledger (also on resume)
                break
            last = rnd
            d_rec: dict[str, Any] = {}
            left = False
            statement: dict[str, Any] = {}
            for it in range(spec.local_iters):
                recorded: Any = (anchored.own(rnd, it) if anchored else (self.evaluate_or_none(
                    "GetStep", run, self.msp, str(rnd), str(it)) or {}).get("generator"))
                if recorded is None and self.round_went_on(run, rnd, spec):
                    left = True
                    break
                self.set_status(phase="step", round=rnd, iter=it)
                seed = derive_seed(cfg.seed, "noise", r, rnd, it)
                fake = g.make_fake(cfg.batch_size, seed)
                fake_sha = self.workspace.put(array_bytes(fake.array))
                statement = {"round": rnd, "iter": it, "fake_sha256": fake_sha,
                             "g_weights_sha256": sha256_hex(array_bytes(state_dict_to_vector(gen))),
                             "noise_seed": seed, "batch_size": cfg.batch_size}
                if anchored is not None:  # signed hand-over through the workspace
                    anchored.hand_over(rnd, it, statement)
                    if it == spec.local_iters - 1:  # all of G's statements of the round are signed: its root
                        anchored.anchor(rnd, spec.local_iters, {  # commits while D takes the last step
                            "fake_sha256": statement["fake_sha256"], "g_weights_sha256": statement["g_weights_sha256"]},
                            restarted=rnd == first)
                    d_rec, d_signed = anchored.receive(rnd, it)
                    if d_rec.get("fake_sha256") != fake_sha:
                        anchored.fault(rnd, it, "statement_invalid", fake_sha, str(d_rec.get("fake_sha256")),
                                       "the discriminator's statement names another fake batch")
                    g.apply_feedback(anchored.load(rnd, it, "feedback_hash_mismatch", d_signed,
                                                   str(d_rec["feedback_sha256"]), shape))
                    continue
                if recorded is None:
                    self.submit(spec, "RecordGeneratorStep", run, json.dumps(statement, sort_keys=True),
                                landed=functools.partial(self._step_landed, run, rnd, it, "generator",
                                                         {"fake_sha256": fake_sha}))
                elif recorded["fake_sha256"] != fake_sha:  # replaying after a restart: must be the same batch
                    raise ResumeMismatchError(f"round {rnd} iter {it}: recomputed fake batch {fake_sha} is not "
                                              f"the recorded {recorded['fake_sha256']}")
                d_rec = wait_step(self, spec, run, rnd, it, "discriminator")
                feedback = load_checked(self, spec, run, rnd, it, "feedback_hash_mismatch",
                                        str(d_rec["feedback_sha256"]), shape, replaying=recorded is not None)
                g.apply_feedback(feedback)
            if anchored is not None and not left:  # G's root is in (above); D's checked against what G received
                d_rec = anchored.counterpart_root(rnd, spec.local_iters, restarted=rnd == first)
            if left:
                # Re-join: the round went on without this registry (its merger was out,
                # e.g. its peer was down): the local steps of this round are discarded and
                # the next round starts from the agreed average, like every registry's.
                if anchored is not None:  # D, waiting for this round's next statement, learns it here
                    anchored.store.mark_left(run, rnd, "generator")
                skipped.append(rnd)
                self.progress.extra["skipped_rounds"] = skipped
                self.set_status(phase="left out", round=rnd, iter=None, force=True)
                log.warning("%s generator: round %d went on without this registry: loading its agreed average",
                            self.msp, rnd)
                avg, _ = self.agreed_average(run, rnd, run, spec.threshold, by_events=True)
                vector_to_state_dict(gen, avg[:n_g])
                store.save(rnd + 1, {"weights": torch.from_numpy(state_dict_to_vector(gen)),
                                     **adam_state(g.optimizer, "adam")}, {})
                continue
            g_sha = self.workspace.put(array_bytes(state_dict_to_vector(gen)))
            self.set_status(phase="merge", round=rnd, iter=None, force=True)
            # Only the first round after a (re)start can have its update on the ledger already.
            update = self.evaluate_or_none("GetLocalUpdate", run, self.msp, str(rnd)) if rnd == first else None
            if update is None:  # the merger masks it and records it with its Submit
                updates.put_update(run, rnd, {"round": rnd, "g_weights_sha256": g_sha,
                                              "d_weights_sha256": d_rec["d_weights_sha256"]})
            elif update["g_weights_sha256"] != g_sha:
                raise ResumeMismatchError(f"round {rnd}: recomputed generator {g_sha} is not the recorded "
                                          f"{update['g_weights_sha256']}")
            avg, _ = self.agreed_average(run, rnd, run, spec.threshold, by_events=True)
            vector_to_state_dict(gen, avg[:n_g])
            store.save(rnd + 1, {"weights": torch.from_numpy(state_dict_to_vector(gen)),
                                 **adam_state(g.optimizer, "adam")}, {})
            if rnd - 1 >= 0 and rnd - 1 not in keep:
                if anchored is not None:
                    anchored.discard(rnd - 1, spec.local_iters)
                else:
                    discard_round(self, run, rnd - 1)
        head = self.evaluate_or_none("GetStepHead", run, self.msp) or {}
        if head and head.get("phase") != "stopped":  # the stop names the last completed step
            self.submit(spec, "RecordStop", run, json.dumps({
                "round": int(head["round"]), "iter": int(head["iter"]),
                "reason": ("threshold" if last != spec.rounds - 1 else
                           "privacy_budget" if spec.rounds < spec.config.rounds else "budget"),
                "g_loss": self.own_g_loss(run, spec, int(head["round"]))}, sort_keys=True),
                landed=functools.partial(self._stopped, run))
        if last not in keep:
            if anchored is not None:
                anchored.discard(last, spec.local_iters)
            else:
                discard_round(self, run, last)
        self.set_status(phase="stopped-run", force=True)

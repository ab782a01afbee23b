"""The generator's and discriminator's hand-over in anchored runs (``step_records: anchored``).

Who calls: :class:`synthreg.apps.generator.GeneratorApp` and
:class:`synthreg.apps.discriminator.DiscriminatorApp`, one :class:`AnchoredSteps`
per app per run, in place of the per-step transactions of the strict mode.

Per local iteration: the app signs its step statement (the JSON the strict mode
submits) with its own identity key and puts it in the registry's workspace
(:class:`synthreg.chain.anchor.StatementStore`); its counterpart waits for it,
checks the signature against the signer's certificate and the artefact against
the statement's hash, and only then uses it. At the end of the round each app
commits the Merkle root of its statements; before that it checks the
counterpart's root (once on the ledger) against the statements it received.

What fails when: a bad signature (``statement_invalid``), an artefact that does
not match its signed hash (``fake_hash_mismatch`` / ``feedback_hash_mismatch``)
or a counterpart root that is not the root of the statements received
(``root_mismatch``) is recorded with ``RecordFault`` at once — the signed
statement is the evidence, in the fault's detail — and raised as
:class:`~synthreg.apps.generator.StepFaultError`; a restarted app whose
recomputed statement differs from the one it signed before raises
:class:`~synthreg.apps.checkpoint.ResumeMismatchError`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from synthreg.apps.checkpoint import ResumeMismatchError
from synthreg.chain.anchor import (
    SignedStatement,
    StatementError,
    StatementStore,
    merkle_root,
    sign_statement,
    verify_statement,
)
from synthreg.chain.runs import RunSpec
from synthreg.workspace import WorkspaceError

if TYPE_CHECKING:
    from synthreg.apps.base import App

__all__ = ["AnchoredSteps"]

ROOT_FN = {"generator": "RecordGeneratorRoot", "discriminator": "RecordDiscriminatorRoot"}
ROOT_EVENT = {"generator": "GeneratorRoot", "discriminator": "DiscriminatorRoot"}


def _evidence(st: SignedStatement | None, note: str) -> str:
    """A fault's detail: the signed statement itself (about 500 characters) and a note."""
    if st is None:
        return note[:1000]
    return json.dumps({"signed_statement": json.loads(st.to_json()), "note": note[:200]}, sort_keys=True)[:1024]


class AnchoredSteps:
    """One app's (generator or discriminator) statements and roots in one anchored run."""

    def __init__(self, app: App, spec: RunSpec, run: str) -> None:
        self.app, self.spec, self.run = app, spec, run
        self.store = StatementStore(app.workspace.root)
        self.role = app.role
        self.other = "discriminator" if app.role == "generator" else "generator"

    # -- faults
    def fault(self, rnd: int, it: int, kind: str, expected: str, got: str, detail: str) -> NoReturn:
        from synthreg.apps.generator import StepFaultError
        self.app.submit(self.spec, "RecordFault", self.run, json.dumps({
            "round": rnd, "iter": it, "kind": kind, "expected": expected, "got": got, "detail": detail},
            sort_keys=True))
        raise StepFaultError(self.app.msp, rnd, it, kind, detail)

    # -- per iteration
    def own(self, rnd: int, it: int) -> SignedStatement | None:
        return self.store.get(self.run, rnd, it, self.role)

    def hand_over(self, rnd: int, it: int, payload: dict[str, Any]) -> None:
        """Sign ``payload`` and put it where the counterpart looks; after a restart the
        statement signed before must be what was recomputed."""
        before = self.own(rnd, it)
        if before is not None:
            if before.statement != json.dumps(payload, sort_keys=True):
                raise ResumeMismatchError(f"round {rnd} iter {it}: recomputed {self.role} statement differs from "
                                          "the one signed before the restart")
            return
        self.store.put(sign_statement(self.run, self.app.msp, self.role, payload, self.app.signer), rnd, it)

    def receive(self, rnd: int, it: int) -> tuple[dict[str, Any], SignedStatement]:
        """The counterpart's verified statement of (``rnd``, ``it``), once it is in the
        workspace; a StepFault of this registry (the other app refused something) raises."""
        from synthreg.apps.generator import raise_recorded_fault
        app = self.app

        def faulted() -> bool | None:
            raise_recorded_fault(app, self.run, rnd, it)
            return None

        app.wait_local(lambda: True if self.store.exists(self.run, rnd, it, self.other) else None, faulted,
                       app.mine(self.run, "StepFault"), f"the {self.other}'s statement of round {rnd} iter {it}",
                       self.run, watch=self.store.round_dir(self.run, rnd))
        try:
            st = self.store.get(self.run, rnd, it, self.other)
            assert st is not None
            fields = verify_statement(st, app.certs[self.other], self.run, app.msp, self.other)
            if (fields.get("round"), fields.get("iter")) != (rnd, it):
                raise StatementError(f"statement of round {fields.get('round')} iter {fields.get('iter')} "
                                     f"filed as round {rnd} iter {it}")
        except StatementError as exc:
            try:
                bad = self.store.get(self.run, rnd, it, self.other)
            except StatementError:
                bad = None
            self.fault(rnd, it, "statement_invalid", "0" * 64, bad.sha256() if bad else "0" * 64,
                       _evidence(bad, str(exc)))
        return fields, st

    def load(self, rnd: int, it: int, kind: str, st: SignedStatement, digest: str,
             shape: tuple[int, ...]) -> np.ndarray:
        """The artefact ``digest`` named by the signed statement ``st``, checked; a
        missing or altered one is recorded as a fault with ``st`` as evidence."""
        try:
            data = self.app.workspace.get(digest)
        except WorkspaceError as exc:
            self.fault(rnd, it, kind, digest, getattr(exc, "actual", "0" * 64), _evidence(st, str(exc)))
        return np.frombuffer(data, dtype="<f4").reshape(shape).copy()

    # -- per round
    def statements(self, rnd: int, role: str, count: int) -> list[SignedStatement]:
        got = self.store.round(self.run, rnd, role, count)
        missing = [i for i, s in enumerate(got) if s is None]
        if missing:
            raise RuntimeError(f"round {rnd}: {role} statements of iterations {missing} are not in the workspace")
        return [s for s in got if s is not None]

    def roots(self, rnd: int) -> dict[str, Any]:
        return dict(self.app.evaluate_or_none("GetStepRoot", self.run, self.app.msp, str(rnd)) or {})

    def anchor(self, rnd: int, count: int, fields: dict[str, Any], restarted: bool = True) -> None:
        """Commit this app's root of round ``rnd`` (``fields`` besides round, count and
        merkle_root). In the first round after a start (``restarted``) it may be on the
        ledger already: then it is checked, not sent again. A later round's root can
        only be this process's own, so that round sends without asking first (a read
        per app and round less, issue 11); a refusal of a root that is on the ledger
        with this Merkle root (an earlier attempt whose answer was lost) is success."""
        root = merkle_root(self.statements(rnd, self.role, count))
        recorded = self.roots(rnd).get(self.role) if restarted else None
        if recorded is None:
            self.app.submit(self.spec, ROOT_FN[self.role], self.run, json.dumps(
                {"round": rnd, "count": count, "merkle_root": root, **fields}, sort_keys=True),
                landed=lambda: (self.roots(rnd).get(self.role) or {}).get("merkle_root") == root)
        elif recorded["merkle_root"] != root:
            raise ResumeMismatchError(f"round {rnd}: recomputed {self.role} root {root} is not the recorded "
                                      f"{recorded['merkle_root']}")

    def counterpart_root(self, rnd: int, count: int, restarted: bool = True) -> dict[str, Any]:
        """The counterpart's root of round ``rnd`` once on the ledger, checked against
        the statements this app received and verified (else a ``root_mismatch`` fault):
        ``count``, ``merkle_root`` and, of the discriminator's, ``d_weights_sha256``.
        Taken from the root's event (the own peer emits events of valid transactions
        only, so it says what a read of that peer would); ``GetStepRoot`` is asked only
        for an event without them, or when another event of the wait or ``recheck_s``
        calls for it, and first thing only in the first round after a start
        (``restarted``: the event may precede the feed's checkpoint). The counterpart
        sends its root only after this app's last statement, so a first ask found
        nothing in nearly every round (issue 11)."""
        app = self.app
        match = app.mine(self.run, ROOT_EVENT[self.other], "StepFault", "TrainingStopped")
        this_round = app.mine_in(self.run, rnd, ROOT_EVENT[self.other])
        since = app.feed.mark()

        def ready() -> dict[str, Any] | None:
            ev = app.feed.seen(this_round)
            if ev is not None and ev.payload.get("merkle_root"):
                root = {"count": int(ev.payload["iter"]) + 1, "merkle_root": str(ev.payload["merkle_root"])}
                if self.other == "discriminator" and ev.payload.get("d_weights_sha256"):
                    return {**root, "d_weights_sha256": str(ev.payload["d_weights_sha256"])}
                if self.other == "generator":
                    return root
            got = self.roots(rnd).get(self.other)
            return dict(got) if got else None

        def gate() -> bool:
            return app.feed.seen(this_round) is not None or app.feed.seen_since(since, match)

        root = dict(app.wait(app.gated(ready, gate, ask_first=restarted or gate()), match,
                             f"the {self.other}'s root of round {rnd}", self.run))
        received = merkle_root(self.statements(rnd, self.other, count))
        if int(root["count"]) != count or root["merkle_root"] != received:
            self.fault(rnd, count - 1, "root_mismatch", received, str(root["merkle_root"]),
                       f"the {self.other}'s root of round {rnd} (count {root['count']}) is not the root of the "
                       f"{count} statements it handed over")
        return root

    def discard(self, rnd: int, count: int) -> None:
        """Remove round ``rnd``'s fake batches and feedback (the statements stay)."""
        for role, key in (("generator", "fake_sha256"), ("discriminator", "feedback_sha256")):
            for st in self.store.round(self.run, rnd, role, count):
                if st is not None:
                    self.app.workspace.discard(str(st.fields[key]))

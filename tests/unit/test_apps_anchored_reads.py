"""When an anchored run's apps read the step roots (issue 11: every ``GetStepRoot`` costs
the own peer a signature check, a chaincode call and an endorsement signature).

:class:`~synthreg.apps.anchored.AnchoredSteps` against a stand-in app: a real event feed
fed by hand, real signed statements in a real statement store, and a ledger of roots
in a dict whose reads are counted."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from synthreg.apps.anchored import AnchoredSteps
from synthreg.apps.base import App
from synthreg.apps.checkpoint import ResumeMismatchError
from synthreg.apps.events import AppEvent, EventFeed
from synthreg.chain.anchor import StatementStore, merkle_root, sign_statement
from synthreg.chain.runs import RunSpec
from synthreg.ledger.events import Checkpoint
from synthreg.ledger.signing import ecdsa_signer

MSP, RUN = "Registry1MSP", "run-a"


class _App:
    """What AnchoredSteps uses of an app; ``roots`` is the ledger's step roots."""

    role = "generator"
    msp = MSP

    def __init__(self, root: Path, feed: EventFeed) -> None:
        self.workspace = type("W", (), {"root": root})()
        self.feed = feed
        self.signer = ecdsa_signer(ec.generate_private_key(ec.SECP256R1()))
        self.roots: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.sent: list[str] = []
        self.landed: list[Any] = []

    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        assert fn == "GetStepRoot"
        self.reads += 1
        return dict(self.roots) or None

    def submit(self, spec: Any, fn: str, run: str, arg: str, landed: Any = None) -> None:
        self.sent.append(fn)
        self.landed.append(landed)
        self.roots["generator"] = json.loads(arg)

    def mine(self, run: str, *names: str) -> Any:
        return App.mine(self, run, *names)  # type: ignore[arg-type]

    def mine_in(self, run: str, rnd: int, *names: str) -> Any:
        return App.mine_in(self, run, rnd, *names)  # type: ignore[arg-type]

    def gated(self, ready: Any, gate: Any, ask_first: bool = True) -> Any:
        return App.gated(self, ready, gate, ask_first)  # type: ignore[arg-type]

    def wait(self, ready: Any, match: Any, what: str, run: str) -> Any:
        return self.feed.wait(ready, match, what, run=run, timeout=5.0)


def _steps(tmp_path: Path, count: int = 3) -> tuple[_App, AnchoredSteps]:
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=30.0)  # type: ignore[arg-type]
    app = _App(tmp_path, feed)
    steps = AnchoredSteps(app, RunSpec.__new__(RunSpec), RUN)  # type: ignore[arg-type]
    for it in range(count):
        for role in ("generator", "discriminator"):
            steps.store.put(sign_statement(RUN, MSP, role, {"round": 2, "iter": it}, app.signer), 2, it)
    return app, steps


def test_a_root_after_the_first_round_is_sent_without_asking_first(tmp_path: Path) -> None:
    app, steps = _steps(tmp_path)
    steps.anchor(2, 3, {}, restarted=False)
    assert app.sent == ["RecordGeneratorRoot"] and app.reads == 0
    app.sent.clear()
    steps.anchor(2, 3, {}, restarted=True)  # after a start: it is on the ledger, checked, not sent again
    assert app.sent == [] and app.reads == 1


def test_a_root_refused_as_a_duplicate_counts_as_sent_only_if_the_ledger_holds_it(tmp_path: Path) -> None:
    """What :meth:`App.submit` asks when the chaincode refuses a retried root (the first
    attempt landed, its answer was lost): is this very root on the ledger?"""
    app, steps = _steps(tmp_path)
    steps.anchor(2, 3, {}, restarted=False)
    landed = app.landed[0]
    assert landed is not None and landed()
    app.roots["generator"] = {"merkle_root": "f" * 64}  # another root under the round: a real refusal
    assert not landed()
    with pytest.raises(ResumeMismatchError, match="recorded"):
        steps.anchor(2, 3, {}, restarted=True)


def test_the_counterpart_root_is_asked_for_once_its_event_came(tmp_path: Path) -> None:
    app, steps = _steps(tmp_path)
    received = merkle_root(steps.statements(2, "discriminator", 3))

    def commit_later() -> None:
        app.roots["discriminator"] = {"count": 3, "merkle_root": received}
        app.feed._deliver(AppEvent("DiscriminatorRoot", 9, "tx", {"run": RUN, "msp": MSP, "round": 2}))

    timer = threading.Timer(0.3, commit_later)
    timer.start()
    try:
        root = steps.counterpart_root(2, 3, restarted=False)
    finally:
        timer.join()
    assert root["merkle_root"] == received
    assert app.reads == 1  # not before the event (recheck_s is 30 s here), once after it


def test_the_counterpart_root_is_taken_from_its_event(tmp_path: Path) -> None:
    """The root's event from the own peer carries what the check needs: no read (of
    the discriminator's, its weights' hash too, which the generator's update names)."""
    app, steps = _steps(tmp_path)
    received = merkle_root(steps.statements(2, "discriminator", 3))
    app.feed._deliver(AppEvent("DiscriminatorRoot", 9, "tx", {
        "run": RUN, "msp": MSP, "round": 2, "iter": 2, "merkle_root": received, "d_weights_sha256": "d" * 64}))
    root = steps.counterpart_root(2, 3, restarted=False)
    assert root == {"count": 3, "merkle_root": received, "d_weights_sha256": "d" * 64} and app.reads == 0

    steps.role, steps.other = "discriminator", "generator"  # the discriminator's side
    steps.fault = _raise_kind  # type: ignore[method-assign, assignment]
    app.feed._deliver(AppEvent("GeneratorRoot", 10, "tx", {
        "run": RUN, "msp": MSP, "round": 2, "iter": 2, "merkle_root": "e" * 64}))
    with pytest.raises(RuntimeError, match="root_mismatch"):  # the event's root is checked like a read one
        steps.counterpart_root(2, 3, restarted=False)
    assert app.reads == 0


def test_a_root_event_without_the_root_is_followed_by_a_read(tmp_path: Path) -> None:
    """An event of a chaincode that did not put the root in it (or a discriminator root
    without its weights' hash): read back, as before."""
    app, steps = _steps(tmp_path)
    received = merkle_root(steps.statements(2, "discriminator", 3))
    app.roots["discriminator"] = {"count": 3, "merkle_root": received, "d_weights_sha256": "d" * 64}
    app.feed._deliver(AppEvent("DiscriminatorRoot", 9, "tx", {
        "run": RUN, "msp": MSP, "round": 2, "iter": 2, "merkle_root": received}))
    assert steps.counterpart_root(2, 3, restarted=False)["d_weights_sha256"] == "d" * 64
    assert app.reads == 1


def _raise_kind(rnd: int, it: int, kind: str, *rest: Any) -> None:
    raise RuntimeError(kind)


def test_after_a_start_the_counterpart_root_is_asked_for_at_once(tmp_path: Path) -> None:
    app, steps = _steps(tmp_path)
    app.roots["discriminator"] = {"count": 3, "merkle_root": merkle_root(steps.statements(2, "discriminator", 3))}
    steps.counterpart_root(2, 3, restarted=True)  # its event may lie before the feed's checkpoint
    assert app.reads == 1


def test_a_counterpart_root_that_is_not_what_was_received_is_a_fault(tmp_path: Path) -> None:
    app, steps = _steps(tmp_path)
    app.roots["discriminator"] = {"count": 3, "merkle_root": "e" * 64}
    faults: list[str] = []

    def fault(rnd: int, it: int, kind: str, *rest: Any) -> None:
        faults.append(kind)
        raise RuntimeError(kind)

    steps.fault = fault  # type: ignore[method-assign, assignment]
    with pytest.raises(RuntimeError, match="root_mismatch"):
        steps.counterpart_root(2, 3, restarted=True)
    assert faults == ["root_mismatch"]
    assert StatementStore(tmp_path).exists(RUN, 2, 0, "generator")


class _Discriminator:
    """What DiscriminatorApp._generator_step uses of the app; ``GetStepHead`` counted."""

    msp = MSP

    def __init__(self, root: Path, feed: EventFeed) -> None:
        import types

        from synthreg.apps.discriminator import DiscriminatorApp
        self.feed, self.workspace = feed, type("W", (), {"root": root})()
        self._past_asked: dict[str, int] = {}
        self._watches: dict[int, Any] = {}
        self._stop = threading.Event()
        self.head: dict[str, Any] = {}
        self.heads = 0
        for name in ("_generator_step", "_moving_past"):
            setattr(self, name, types.MethodType(getattr(DiscriminatorApp, name), self))
        for name in ("wait_local", "_watch", "mine"):
            setattr(self, name, types.MethodType(getattr(App, name), self))

    def evaluate_or_none(self, fn: str, *args: str) -> Any:
        assert fn == "GetStepHead"
        self.heads += 1
        return self.head

    def raise_if_sibling_failed(self, run: str) -> None:
        pass


def test_the_discriminator_asks_for_the_generators_head_once_then_only_after_a_later_root(tmp_path: Path) -> None:
    """G's head can move past round r only with G's root of a later round or its stop:
    the root of the round just done (every round has one) sends D to no ``GetStepHead``."""
    feed = EventFeed(None, Checkpoint(tmp_path / "cp.json"), recheck_s=30.0)  # type: ignore[arg-type]
    d = _Discriminator(tmp_path, feed)
    store, signer = StatementStore(tmp_path), ecdsa_signer(ec.generate_private_key(ec.SECP256R1()))
    for rnd in (2, 3):
        store.put(sign_statement(RUN, MSP, "generator", {"round": rnd, "iter": 0}, signer), rnd, 0)

    def root(rnd: int) -> None:
        feed._deliver(AppEvent("GeneratorRoot", 9, "tx", {"run": RUN, "msp": MSP, "round": rnd, "iter": 0}))

    step = d._generator_step  # type: ignore[attr-defined]
    assert step(RUN, 2, 0, object()) == {} and d.heads == 1  # the process's first wait asks
    root(2)
    assert step(RUN, 3, 0, object()) == {} and d.heads == 1  # round 2's root: G is not past round 3
    root(4)
    d.head = {"round": 4, "iter": 0, "phase": "g"}
    assert step(RUN, 3, 1, object()) is None and d.heads == 2  # a later round's root: G moved past round 3

"""Run specs (chain/runs.py), run configs (apps/admin.py) and the apps' event waits, without a network."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from synthreg.apps.admin import spec_from_config
from synthreg.apps.events import AppEvent, EventFeed, RunAbortedError, WaitTimeoutError
from synthreg.chain.runs import (
    ApprovalRefusedError,
    RunRecord,
    RunSpec,
    RunSpecError,
    check_local_facts,
    default_audit_rounds,
)
from synthreg.data.datasets import dataset_schema
from synthreg.gan.federated import TrainConfig
from synthreg.ledger.events import ChaincodeEvent, Checkpoint

MSPS = ("Registry1MSP", "Registry2MSP", "Registry3MSP")


class _Profile:
    msp_ids: ClassVar[list[str]] = list(MSPS)


def _spec(**kw: Any) -> RunSpec:
    args: dict[str, Any] = {"participants": MSPS, "schema_text": dataset_schema("rotterdam").dump(),
                            "config": TrainConfig(rounds=4, local_iters=2, num_threads=1), "threshold": 2,
                            "audit_rounds": (1, 3), "ceremony_id": "c-1"}
    args.update(kw)
    return RunSpec(**args)


def _record(spec: RunSpec, text: str | None = None) -> RunRecord:
    text = spec.to_json() if text is None else text
    return RunRecord("r1", text, hashlib.sha256(text.encode()).hexdigest(), "proposed", {}, {}, None, None)


def test_spec_round_trips_through_its_exact_text() -> None:
    spec = _spec()
    again = RunSpec.from_json(spec.to_json())
    assert again == spec and again.to_json() == spec.to_json()
    assert json.loads(spec.to_json())["schema_sha256"] == dataset_schema("rotterdam").hash()
    assert spec.registry_index("Registry2MSP") == 1


def test_the_default_modes_are_anchored_served_and_per_step_under_dp() -> None:
    spec = _spec()
    assert (spec.step_records, spec.blobs) == ("anchored", "served")
    cfg = json.loads(spec.to_json())["config"]
    assert (cfg["step_records"], cfg["blobs"]) == ("anchored", "served")  # resolved in the agreed text
    dp = _spec(config=TrainConfig(rounds=4, local_iters=2, num_threads=1, dp_epsilon=50.0, dp_delta=1e-5,
                                  dp_noise_multiplier=1.0, dp_sample_rate=0.1, pac=1))
    assert dp.step_records == "ledger"  # its spend records name per-step records
    assert "step_records" not in json.loads(dp.to_json())["config"]
    old = json.loads(spec.to_json())  # a spec agreed before either mode existed means both "ledger"
    del old["config"]["step_records"], old["config"]["blobs"]
    legacy = RunSpec.from_json(json.dumps(old))
    assert (legacy.step_records, legacy.blobs) == ("ledger", "ledger")
    with pytest.raises(RunSpecError, match="differential privacy"):
        _spec(config=dp.config, step_records="anchored")


@pytest.mark.parametrize("kw, match", [
    ({"participants": ("Registry2MSP", "Registry1MSP")}, "sorted"),
    ({"threshold": 4}, "threshold"),
    ({"audit_rounds": (3, 1)}, "ascending"),
    ({"audit_rounds": (4,)}, "0..3"),
    ({"config": TrainConfig(rounds=4, local_iters=2)}, "num_threads"),
    ({"stop_rule": {"kind": "threshold"}}, "unknown stop rule"),
    ({"stop_rule": {"kind": "loss_plateau", "epsilon": 0.1}}, "needs exactly"),
])
def test_inconsistent_specs_are_refused_before_sending(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(RunSpecError, match=match):
        _spec(**kw)


def test_spec_whose_schema_hash_lies_is_refused() -> None:
    doc = json.loads(_spec().to_json())
    doc["schema_sha256"] = "0" * 64
    with pytest.raises(RunSpecError, match="not the hash of its schema"):
        RunSpec.from_json(json.dumps(doc))


def test_local_checks_name_both_schema_hashes_and_the_ceremony() -> None:
    spec = _spec()
    assert check_local_facts(_record(spec), "Registry1MSP", dataset_schema("rotterdam"), "c-1") == spec
    other = dataset_schema("colon")
    with pytest.raises(ApprovalRefusedError) as err:
        check_local_facts(_record(spec), "Registry1MSP", other, "c-1")
    assert spec.schema_sha256 in str(err.value) and other.hash() in str(err.value)
    with pytest.raises(ApprovalRefusedError, match="ceremony"):
        check_local_facts(_record(spec), "Registry1MSP", dataset_schema("rotterdam"), "c-2")
    with pytest.raises(ApprovalRefusedError, match="not a participant"):
        check_local_facts(_record(spec), "Registry9MSP", dataset_schema("rotterdam"), "c-1")
    tampered = RunRecord("r1", spec.to_json() + " ", _record(spec).run_sha256, "proposed", {}, {}, None, None)
    with pytest.raises(ApprovalRefusedError, match="hashes to"):
        check_local_facts(tampered, "Registry1MSP", dataset_schema("rotterdam"), "c-1")


def test_run_config_file(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(dataset_schema("rotterdam").dump())
    run, spec = spec_from_config({"run": "x", "schema": "schema.yaml", "audit_every": 2,
                                  "training": {"rounds": 5, "local_iters": 3, "gen_dims": [8]}},
                                 _Profile(), "c-1", tmp_path)  # type: ignore[arg-type]
    assert run == "x" and spec.threshold == 2 and spec.audit_rounds == default_audit_rounds(5, 2) == (1, 3, 4)
    assert spec.config.gen_dims == (8,) and spec.config.num_threads == 1
    with pytest.raises(RunSpecError, match="unknown run config keys"):
        spec_from_config({"schema": "schema.yaml", "rounds": 3}, _Profile(), "c", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(RunSpecError, match="unknown registries"):
        spec_from_config({"schema": "schema.yaml", "participants": ["Registry7MSP"]}, _Profile(), "c",
                         tmp_path)  # type: ignore[arg-type]


class _FakeStream:
    def __init__(self, events: list[ChaincodeEvent], gate: threading.Event) -> None:
        self.events, self.gate = events, gate

    def __enter__(self) -> _FakeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> Any:
        for ev in self.events:
            self.gate.wait(5)
            yield ev
        while not self.gate.is_set():
            time.sleep(0.01)

    def close(self) -> None:
        self.gate.set()


class _FakeNetwork:
    """In-memory stand-in for the event stream only (the logic of waiting, not the ledger)."""

    def __init__(self, events: list[ChaincodeEvent]) -> None:
        self.gate = threading.Event()
        self.events = events
        self.opened: list[tuple[int | None, str | None]] = []

    def chaincode_events(self, chaincode: str, start_block: int | None = None,
                         after_tx_id: str | None = None) -> _FakeStream:
        self.opened.append((start_block, after_tx_id))
        return _FakeStream(self.events, self.gate)


def _ev(block: int, name: str, **payload: Any) -> ChaincodeEvent:
    return ChaincodeEvent(block, f"tx{block}", "ganledger", name, json.dumps(payload).encode())


def test_wait_returns_when_the_ledger_shows_it_after_a_matching_event(tmp_path: Path) -> None:
    net = _FakeNetwork([_ev(5, "GeneratorStep", run="r", msp="Registry1MSP", round=0, iter=0)])
    ledger: dict[str, Any] = {}
    feed = EventFeed(net, Checkpoint(tmp_path / "cp.json"), checkpoint_every_s=0).start()  # type: ignore[arg-type]
    try:
        def later() -> None:
            time.sleep(0.1)
            ledger["step"] = {"fake": "ab"}
            net.gate.set()
        threading.Thread(target=later).start()
        got = feed.wait(lambda: ledger.get("step"), lambda e: e.name == "GeneratorStep", "step", run="r",
                        timeout=5)
        assert got == {"fake": "ab"}
        with pytest.raises(WaitTimeoutError):
            feed.wait(lambda: None, lambda e: False, "nothing", timeout=0.2)
    finally:
        feed.close()
    assert Checkpoint(tmp_path / "cp.json").block_number == 5  # resumes after what it saw


def test_abort_event_ends_waits(tmp_path: Path) -> None:
    net = _FakeNetwork([_ev(7, "RunAborted", run="r", msp="Registry2MSP", reason="maintenance")])
    net.gate.set()
    feed = EventFeed(net, Checkpoint(tmp_path / "cp.json")).start()  # type: ignore[arg-type]
    try:
        with pytest.raises(RunAbortedError, match="maintenance"):
            feed.wait(lambda: None, lambda e: False, "a step", run="r", timeout=5)
        assert feed.seen(lambda e: e.name == "RunAborted") == AppEvent(
            "RunAborted", 7, "tx7", {"run": "r", "msp": "Registry2MSP", "reason": "maintenance"})
    finally:
        feed.close()

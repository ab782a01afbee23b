"""App.submit: a refusal of a write the ledger already holds (an earlier attempt whose
answer was lost when the own peer died) is that attempt's success; any other refusal raises."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from synthreg.apps import base
from synthreg.apps.base import App
from synthreg.ledger.errors import ChaincodeInfo, EndorseChaincodeError

WAITING = ChaincodeInfo("PRECONDITION_FAILED", "PRECONDITION_FAILED: waiting for the discriminator step of "
                                               "round 1 iter 0 of Registry3MSP in run r")


def _refusing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def submit_synced(_contract: Any, fn: str, *_args: str, orgs: Any) -> None:
        calls.append(fn)
        raise EndorseChaincodeError("refused", WAITING)

    monkeypatch.setattr(base, "submit_synced", submit_synced)
    return calls


def _app() -> Any:
    return SimpleNamespace(contract=object(), msp="Registry3MSP", role="generator")


def test_a_refused_write_the_ledger_already_holds_is_a_success(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _refusing(monkeypatch)
    App.submit(_app(), None, "RecordGeneratorStep", "{}", landed=lambda: True)  # type: ignore[arg-type]
    assert calls == ["RecordGeneratorStep"]


@pytest.mark.parametrize("landed", [None, lambda: False])
def test_any_other_refusal_raises(monkeypatch: pytest.MonkeyPatch, landed: Any) -> None:
    _refusing(monkeypatch)
    with pytest.raises(EndorseChaincodeError, match="refused"):
        App.submit(_app(), None, "RecordGeneratorStep", "{}", landed=landed)  # type: ignore[arg-type]


def test_the_apps_contract_counts_its_reads_by_function() -> None:
    """What ``bench/overhead.py`` prints as the apps' reads: each evaluate by function
    (writes are not reads)."""
    from synthreg.apps.base import PeerWaitingContract

    answers = iter([b"{}", b"{}", b"[]"])
    inner = SimpleNamespace(evaluate=lambda fn, *args: next(answers), submit=lambda fn, *args: b"tx")
    contract = PeerWaitingContract(inner, lambda _text: None)  # type: ignore[arg-type]
    contract.evaluate("GetRound", "r", "1")
    contract.evaluate("GetRound", "r", "2")
    contract.evaluate("ListFaults", "r", "Registry1MSP")
    contract.submit("Submit", "r", "1", "{}")
    assert contract.reads == {"GetRound": 2, "ListFaults": 1}

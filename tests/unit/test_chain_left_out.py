"""When a merger is out of a round (t of n): :func:`synthreg.chain.secagg.left_out_of`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synthreg.chain.secagg import left_out_of

ME, A, B = "Registry3MSP", "Registry1MSP", "Registry2MSP"


def _round(advertised: list[str], shares: Sequence[str] = (), submissions: Sequence[str] = (),
           votes: dict[str, list[str]] | None = None, status: str = "open",
           survivors: Sequence[str] = ()) -> dict[str, Any]:
    return {"advertised": {m: {} for m in advertised}, "shares": {m: {} for m in shares},
            "submissions": {m: {} for m in submissions}, "status": status, "survivors": list(survivors),
            "votes": {"advertise": [], "shares": [], "submit": [], **(votes or {})}}


def test_not_advertised_is_out_once_the_advertise_phase_closed_without_it() -> None:
    assert not left_out_of(_round([A, B]), ME, 2)  # still open: it may advertise
    assert not left_out_of(_round([A, B], votes={"advertise": [A]}), ME, 2)  # one vote is not t
    assert left_out_of(_round([A, B], votes={"advertise": [A, B]}), ME, 2)
    assert left_out_of(_round([A, B], shares=[A]), ME, 2)  # sharing started without it
    assert left_out_of(_round([A, B], status="frozen", survivors=[A, B]), ME, 2)


def test_advertised_but_not_shared_is_out_once_the_share_phase_closed() -> None:
    assert not left_out_of(_round([A, B, ME], shares=[A, B]), ME, 2)
    assert left_out_of(_round([A, B, ME], shares=[A, B], votes={"shares": [A, B]}), ME, 2)
    assert left_out_of(_round([A, B, ME], shares=[A, B], submissions=[A]), ME, 2)


def test_shared_is_out_only_if_the_round_froze_without_its_submission() -> None:
    everyone = [A, B, ME]
    assert not left_out_of(_round(everyone, everyone, [A, B]), ME, 2)
    assert left_out_of(_round(everyone, everyone, [A, B], status="frozen", survivors=[A, B]), ME, 2)
    assert not left_out_of(_round(everyone, everyone, everyone, status="frozen", survivors=[B, A, ME]), ME, 2)

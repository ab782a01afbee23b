"""An app stops waiting once another app of its registry failed the run (it would wait
without end for that app's statement, local update or average)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthreg.apps.base import App, SiblingFailedError


def _app(state: Path, role: str) -> App:
    app = App.__new__(App)  # only its state folder and role are used
    app.state, app.role = state, role
    return app


def test_a_failed_sibling_stops_the_others_with_its_reason(tmp_path: Path) -> None:
    g, m = _app(tmp_path, "generator"), _app(tmp_path, "merger")
    g.raise_if_sibling_failed("run/1")  # nobody failed
    g._finish("run/1", "failed", "own failure")  # its own marker is not a sibling's
    g.raise_if_sibling_failed("run/1")
    m._finish("run/2", "failed", "ChaincodeError: ALREADY_EXISTS")  # another run's
    g.raise_if_sibling_failed("run/1")
    m._finish("run/1", "started", "2026-12-02T15:00:00")
    g.raise_if_sibling_failed("run/1")
    m._finish("run/1", "failed", "ChaincodeError: ALREADY_EXISTS")
    with pytest.raises(SiblingFailedError, match=r"merger failed run run/1: ChaincodeError: ALREADY_EXISTS"):
        g.raise_if_sibling_failed("run/1")
    with pytest.raises(SiblingFailedError, match="generator failed run run/1: own failure"):
        _app(tmp_path, "discriminator").raise_if_sibling_failed("run/1")

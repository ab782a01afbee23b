"""The workspace folder watch that wakes a waiting app when its counterpart's file lands."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from synthreg.apps import dirwatch
from synthreg.apps.dirwatch import DirWatch


def test_a_file_renamed_into_the_folder_wakes_the_waiter_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "statements" / "run" / "3"  # made by the watch if missing
    with DirWatch(folder) as watch:
        assert watch.active and folder.is_dir()
        t0 = time.monotonic()
        assert not watch.wait(0.05) and time.monotonic() - t0 >= 0.045  # nothing landed: the timeout

        def hand_over() -> None:
            time.sleep(0.1)
            tmp = folder / ".0.generator.json.tmp"
            tmp.write_text("{}")
            os.replace(tmp, folder / "0.generator.json")

        writer = threading.Thread(target=hand_over)
        t0 = time.monotonic()
        writer.start()
        assert watch.wait(5.0)
        woke = time.monotonic() - t0
        writer.join()
        assert 0.09 <= woke < 1.0  # at the write, not at the 5 s timeout
        time.sleep(0.05)
        watch.wait(0.0)  # drop what the rename left
        assert not watch.wait(0.02)  # read events are dropped: no wake-up without a new file
    assert watch.fd == -1


def test_without_inotify_the_waiter_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dirwatch, "_lib", lambda: None)
    with DirWatch(tmp_path / "d") as watch:
        assert not watch.active
        (tmp_path / "d" / "x").write_text("x")
        t0 = time.monotonic()
        assert not watch.wait(0.03) and time.monotonic() - t0 >= 0.025  # sleeps the poll interval


def test_an_app_keeps_one_watch_per_thread_while_its_waits_look_at_one_folder(tmp_path: Path) -> None:
    """:meth:`App._watch`: the two waits of every local iteration of a round share one
    inotify instance; the next round's folder replaces it; each thread has its own."""
    from types import SimpleNamespace

    from synthreg.apps.base import App
    app = SimpleNamespace(_watches={})
    r3, r4 = tmp_path / "3", tmp_path / "4"
    first = App._watch(app, r3)  # type: ignore[arg-type]
    assert App._watch(app, r3) is first and first.active  # type: ignore[arg-type]
    (r3 / "0.generator.json").write_text("{}")  # landed between two waits: the next wakes at once
    assert App._watch(app, r3).wait(1.0)  # type: ignore[arg-type]
    other: list[DirWatch] = []
    thread = threading.Thread(target=lambda: other.append(App._watch(app, r3)))  # type: ignore[arg-type]
    thread.start()
    thread.join()
    assert other[0] is not first and len(app._watches) == 2
    nxt = App._watch(app, r4)  # type: ignore[arg-type]
    assert nxt is not first and first.fd == -1 and nxt.folder == r4  # the round's watch closed
    for files in app._watches.values():
        files.close()

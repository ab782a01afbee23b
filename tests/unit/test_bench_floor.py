"""The ratio floor ``bench/overhead.py`` prints (issue 11): lower bounds from measured CPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def services_overhead():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("services_overhead", BENCH / "services_overhead.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("services_overhead", mod)
    spec.loader.exec_module(mod)
    return mod


def test_floor_counts_fabric_then_adds_the_training_then_splits_all_over_hosts(services_overhead) -> None:  # type: ignore[no-untyped-def]
    used = {"peer": 24.0, "orderer": 9.0, "chaincode": 7.0, "generator": 15.0, "discriminator": 14.0,
            "merger": 11.0, "supervisor": 0.1}
    fabric_only, with_training, per_host = services_overhead.ratio_floor(used, train_cpu=14.0, train_wall=10.0,
                                                                          cores=2, hosts=3)
    assert fabric_only == pytest.approx(40.0 / 2 / 10.0)
    assert with_training == pytest.approx((40.0 + 14.0) / 2 / 10.0)
    assert per_host == pytest.approx(80.1 / 3 / 2 / 10.0)


def test_floor_refuses_a_zero_wall_no_cores_or_no_hosts(services_overhead) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="positive in-process wall"):
        services_overhead.ratio_floor({"peer": 1.0}, 1.0, 0.0, 2, 3)
    with pytest.raises(ValueError, match="0 cores"):
        services_overhead.ratio_floor({"peer": 1.0}, 1.0, 1.0, 0, 3)
    with pytest.raises(ValueError, match="0 hosts"):
        services_overhead.ratio_floor({"peer": 1.0}, 1.0, 1.0, 2, 0)


def test_plot_draws_the_run_into_a_png(services_overhead, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    used = {"peer": 50.0, "orderer": 18.0, "chaincode": 13.0, "generator": 31.0, "discriminator": 30.0,
            "merger": 23.0, "supervisor": 0.0}
    floors = dict(zip(("Fabric alone", "+ training", "a host per registry"),
                      services_overhead.ratio_floor(used, 29.0, 17.7, 2, 3), strict=True))
    out = services_overhead.plot_overhead(tmp_path / "figs" / "overhead.png", used, 29.0, 17.7, 91.5, floors)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

"""The commands registry IT staff and researchers run often (`run status`, `run approve`,
`registry node up/down`, `consortium ...`) start without importing torch: each start used
to cost ~2-4 s of CPU on this 2-core machine, and `run watch`-style polling paid it each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIGHT = ["registry_cmd", "run_cmd", "keys_cmd", "onboard_cmd", "audit_cmd", "network_cmd"]


@pytest.mark.parametrize("module", LIGHT)
def test_a_light_command_does_not_import_torch(module: str) -> None:
    code = f"import sys, synthreg.cli.{module}; print(sorted(m for m in ('torch', 'opacus') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", f"synthreg.cli.{module} imports {out.stdout.strip()}"


def test_the_lazy_gan_package_resolves_every_name() -> None:
    import synthreg.gan as gan

    for name in gan.__all__:
        assert getattr(gan, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gan.nope  # noqa: B018


def test_train_config_keeps_its_home_in_federated() -> None:
    from synthreg.gan import config, federated

    assert federated.TrainConfig is config.TrainConfig
    assert federated.NON_IID_LEVERS is config.NON_IID_LEVERS

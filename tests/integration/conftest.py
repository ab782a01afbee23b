"""Integration fixtures: the real local Fabric network started by `make test`.

`scripts/test.sh` starts the network, exports SYNTHREG_NETWORK_HOME and sets
SYNTHREG_REQUIRE_NETWORK=1, so a missing network fails the run instead of
silently skipping every integration test. Run by hand with:

    synthreg network up --home .synthreg/network
    SYNTHREG_NETWORK_HOME=.synthreg/network pytest -m integration
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from synthreg.network.profile import Profile, ProfileError, load_profile


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def profile() -> Profile:
    home = os.environ.get("SYNTHREG_NETWORK_HOME")
    required = os.environ.get("SYNTHREG_REQUIRE_NETWORK") == "1"
    if not home:
        if required:
            pytest.fail("SYNTHREG_NETWORK_HOME is not set but the network is required")
        pytest.skip("no local Fabric network (set SYNTHREG_NETWORK_HOME; `make test` does)")
    try:
        return load_profile(Path(home))
    except ProfileError as exc:
        if required:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture
def unique() -> str:
    """A fresh key suffix so tests never collide with earlier runs on the same ledger."""
    return uuid.uuid4().hex[:12]

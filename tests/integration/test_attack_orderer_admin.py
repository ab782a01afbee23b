"""Issue 10, item 7b, on the real network: one registry's admin cannot remove
channels from another registry's orderer.

The orderer's admin endpoint (channel participation) authorises by the TLS client
certificate alone. Each registry's orderer-admin identity is the TLS pair its own
orderer uses (issued by its TLS CA; the launcher's ``osnadmin`` calls use it).
The attack is the attacker's own: ``osnadmin channel remove`` with Registry2's
pair against Registry1's orderer. Nothing is removed when the test passes; on
the old launcher it removed ``gan`` from Registry1's orderer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from synthreg.network.profile import OrgProfile, Profile


def _osnadmin(admin: OrgProfile, target: OrgProfile, *args: str) -> subprocess.CompletedProcess[str]:
    """``osnadmin channel ARGS`` against ``target``'s orderer with ``admin``'s orderer TLS pair."""
    exe = shutil.which("osnadmin")
    if exe is None:
        pytest.fail("osnadmin not on PATH (source scripts/env.sh)")
    domain = admin.peer_host.split(".", 1)[1]
    assert admin.crypto_root is not None, f"{admin.msp_id}'s crypto is not in this home"
    tls = admin.crypto_root / "nodes" / f"orderer0.{domain}" / "tls"
    return subprocess.run(
        [exe, "channel", *args, "-o", target.orderer_admin_endpoint, "--ca-file", str(target.tls_ca_cert),
         "--client-cert", str(tls / "server.crt"), "--client-key", str(tls / "server.key")],
        capture_output=True, text=True, timeout=60)


def _channels(out: subprocess.CompletedProcess[str]) -> set[str]:
    assert out.returncode == 0 and out.stdout.startswith("Status: 200"), out.stdout + out.stderr
    return {c["name"] for c in json.loads(out.stdout.split("\n", 1)[1])["channels"] or []}


def test_attack_orderer_admin_remove_channel_of_another_registry(profile: Profile) -> None:
    if len(profile.msp_ids) < 2:
        pytest.skip("needs two registries")
    r1, r2 = (profile.org(m) for m in profile.msp_ids[:2])
    if not r1.orderer_admin_endpoint:
        pytest.fail(f"profile {Path(profile.home) / 'profile.json'} predates orderer_admin_endpoint: "
                    "re-run `synthreg network up`")
    channels = set(profile.channels)
    assert _channels(_osnadmin(r1, r1, "list")) == channels  # Registry1's admin on its own orderer
    assert _channels(_osnadmin(r2, r2, "list")) == channels  # and Registry2's on its own

    for args in (("remove", "--channelID", "gan"), ("list",)):
        attack = _osnadmin(r2, r1, *args)
        assert attack.returncode != 0, f"Registry2's admin got through to Registry1's orderer: {attack.stdout}"
        said = attack.stdout + attack.stderr  # osnadmin prints its errors on stdout
        assert not said.startswith("Status: 2") and "tls: certificate required" in said, said

    assert _channels(_osnadmin(r1, r1, "list")) == channels  # nothing was removed

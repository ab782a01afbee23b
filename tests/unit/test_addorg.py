"""add_org_to_config: the newcomer in both org sections, shaped like the members there, and
its orderer among the consenters; nothing else changes; adding a member twice is refused."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from synthreg.network.addorg import add_org_to_config
from synthreg.network.onboarding import OnboardingError, init_registry
from synthreg.network.orgdef import OrgDef

REPO = Path(__file__).resolve().parents[2]


def _config() -> dict[str, Any]:
    msp = {"mod_policy": "Admins", "value": {"config": {"name": "Registry1MSP"}}, "version": "0"}
    return {"channel_group": {"groups": {
        "Application": {"groups": {"Registry1MSP": {"values": {
            "MSP": msp, "AnchorPeers": {"value": {"anchor_peers": [{"host": "10.0.0.11", "port": 7111}]}}}}}},
        "Orderer": {"groups": {"Registry1MSP": {"values": {"MSP": msp, "Endpoints": {"value": {}}}}},
                    "values": {"ConsensusType": {"value": {"metadata": {"consenters": [{"host": "10.0.0.11"}]}}}}},
    }}, "sequence": "3"}


def _group() -> dict[str, Any]:  # as `configtxgen -printOrg` prints it
    return {"groups": {}, "mod_policy": "Admins", "policies": {"Admins": {}}, "version": "0",
            "values": {"MSP": {"value": {"config": {"name": "Registry4MSP"}}},
                       "Endpoints": {"value": {"addresses": ["10.0.0.14:7401"]}}}}


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> OrgDef:
    return init_registry(tmp_path_factory.mktemp("r4") / "home", "Registry4MSP", "10.0.0.14", 7000,
                         REPO / "no-fabric-bin", REPO)


def test_the_newcomer_is_added_to_both_sections_and_the_consenters(newcomer: OrgDef) -> None:
    old = _config()
    kept = copy.deepcopy(old)
    new = add_org_to_config(old, _group(), newcomer)
    assert old == kept  # the original is not touched
    app = new["channel_group"]["groups"]["Application"]["groups"]["Registry4MSP"]
    orderer = new["channel_group"]["groups"]["Orderer"]["groups"]["Registry4MSP"]
    assert sorted(app["values"]) == ["AnchorPeers", "MSP"]  # no Endpoints among application orgs
    assert app["values"]["AnchorPeers"]["value"]["anchor_peers"] == [{"host": "10.0.0.14", "port": 7411}]
    assert sorted(orderer["values"]) == ["Endpoints", "MSP"]
    consenters = new["channel_group"]["groups"]["Orderer"]["values"]["ConsensusType"]["value"]["metadata"][
        "consenters"]
    assert consenters[0] == {"host": "10.0.0.11"}
    assert consenters[1]["host"] == "10.0.0.14" and consenters[1]["port"] == 7401
    assert base64.b64decode(consenters[1]["server_tls_cert"]).decode() == newcomer.orderer_tls_cert
    new["channel_group"]["groups"]["Application"]["groups"].pop("Registry4MSP")
    new["channel_group"]["groups"]["Orderer"]["groups"].pop("Registry4MSP")
    consenters.pop()
    assert new == kept  # and nothing else changed


def test_a_member_is_not_added_twice(newcomer: OrgDef) -> None:
    once = add_org_to_config(_config(), _group(), newcomer)
    with pytest.raises(OnboardingError, match="already in the Application group"):
        add_org_to_config(once, _group(), newcomer)

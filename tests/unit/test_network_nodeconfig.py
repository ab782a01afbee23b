"""The node configs written from Fabric's sample core.yaml / orderer.yaml (no Fabric needed)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import yaml

from synthreg.network import fabricconfig

SAMPLE_CORE = {
    "peer": {"keepalive": {"minInterval": "60s"}},
    "chaincode": {"externalBuilders": []},
    "vm": {"endpoint": "unix:///var/run/docker.sock"},
    "ledger": {"state": {"stateDatabase": "CouchDB"}, "history": {"enableHistoryDatabase": True}},
}
SAMPLE_ORDERER = {"General": {"ListenPort": 7050, "Keepalive": {"ServerMinInterval": "60s", "ServerTimeout": "20s"}}}


def _write(tmp_path: Path) -> Path:
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "core.yaml").write_text(yaml.safe_dump(SAMPLE_CORE))
    (sample / "orderer.yaml").write_text(yaml.safe_dump(SAMPLE_ORDERER))
    cfg = types.SimpleNamespace(config_dir=tmp_path / "config", builder_dir=tmp_path / "builders")
    return fabricconfig.write_node_configs(cfg, sample)  # type: ignore[arg-type]


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_orderer_permits_the_peer_cli_keepalive_pings(tmp_path: Path) -> None:
    """The peer CLI's orderer client pings every 10 s (gRPC's floor, no keepalive set);
    an orderer that demands 60 s answers GOAWAY too_many_pings to a slow approve."""
    orderer = yaml.safe_load((_write(tmp_path) / "orderer.yaml").read_text())
    assert _seconds(orderer["General"]["Keepalive"]["ServerMinInterval"]) < 10
    assert orderer["General"]["Keepalive"]["ServerTimeout"] == "20s"  # the rest is kept
    assert orderer["General"]["ListenPort"] == 7050


def test_peer_config_uses_the_external_builder_and_leveldb(tmp_path: Path) -> None:
    core = yaml.safe_load((_write(tmp_path) / "core.yaml").read_text())
    assert core["vm"]["endpoint"] == ""
    assert core["ledger"]["state"]["stateDatabase"] == "goleveldb"
    assert core["ledger"]["history"]["enableHistoryDatabase"] is False  # no chaincode reads key history
    assert core["peer"]["gateway"]["enabled"] is True
    assert [b["name"] for b in core["chaincode"]["externalBuilders"]] == ["synthreg-ccaas"]


def test_missing_sample_config_names_the_script(tmp_path: Path) -> None:
    cfg = types.SimpleNamespace(config_dir=tmp_path / "config", builder_dir=tmp_path / "builders")
    with pytest.raises(FileNotFoundError, match=r"fabric-binaries\.sh"):
        fabricconfig.write_node_configs(cfg, tmp_path / "nowhere")  # type: ignore[arg-type]

"""`synthreg keys` / `synthreg audit` CLI: readable errors and keygen (no network)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from synthreg.cli import audit_cmd, keys_cmd

runner = CliRunner()


def test_keygen_json_prints_id_and_paths(tmp_path: Path) -> None:
    res = runner.invoke(audit_cmd.app, ["keygen", "--out", str(tmp_path / "aud"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data["auditor_id"]) == 16
    assert stat.S_IMODE(Path(data["secret_key_file"]).stat().st_mode) == 0o600
    again = runner.invoke(audit_cmd.app, ["keygen", "--out", str(tmp_path / "aud")])
    assert again.exit_code == 1 and "already exists" in again.stderr and "Traceback" not in again.output


def _one_red_line(res: object, *needles: str) -> None:
    exit_code = res.exit_code
    stderr: str = res.stderr
    assert exit_code == 1
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    for n in needles:
        assert n in lines[0]
    assert "Traceback" not in res.output


def test_missing_network_profile_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(keys_cmd.app, ["show", "--home", str(tmp_path)])
    _one_red_line(res, "keys show failed", "no network profile")
    res = runner.invoke(keys_cmd.app, ["ceremony", "--threshold", "2", "--home", str(tmp_path)])
    _one_red_line(res, "keys ceremony failed", "no network profile")


def test_missing_key_files_are_one_line(tmp_path: Path) -> None:
    res = runner.invoke(keys_cmd.app, ["release", "--org", "Registry1MSP", "--auditor", str(tmp_path / "nope.pem"),
                                       "--home", str(tmp_path)])
    _one_red_line(res, "keys release failed", "auditor public key not found")
    res = runner.invoke(audit_cmd.app, ["unseal", "--key", str(tmp_path), "--out", str(tmp_path / "o"),
                                        "--home", str(tmp_path)])
    _one_red_line(res, "audit unseal failed", "auditor private key not found")

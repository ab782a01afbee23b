"""`synthreg train-local --data` and `synthreg sample [--verify]` (CliRunner, no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from synthreg.cli import sample_cmd
from synthreg.cli.main import app
from synthreg.cli.sample_cmd import AgreedHashError, agreed_average_sha256, ledger_lookup
from synthreg.data import load_dataset
from synthreg.data.schema import Schema
from synthreg.gan.bundle import AgreedHashLookup, Bundle, load_bundle, write_bundle
from synthreg.gan.encoder import TabularEncoder
from synthreg.gan.federated import TrainConfig
from synthreg.gan.models import build_models
from synthreg.gan.weights import state_dict_to_vector
from synthreg.secagg.wire import average_sha256

runner = CliRunner()
TINY = ["--rounds", "1", "--local-iters", "1", "--batch-size", "20", "--no-progress"]


@pytest.fixture(scope="module")
def registry_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("regs")
    real = load_dataset("rotterdam")
    a, b = root / "a.csv", root / "b.csv"
    real.iloc[:60].to_csv(a, index=False)
    real.iloc[60:100].to_csv(b, index=False, sep=";")  # another registry, another delimiter
    schema = root / "schema.yaml"
    schema.write_text(Schema.bundled("rotterdam").dump())
    return a, b, schema


def test_train_local_on_registry_files(registry_files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, b, schema = registry_files
    out = tmp_path / "out"
    res = runner.invoke(app, ["train-local", "--data", str(a), "--data", str(b), "--schema", str(schema),
                                                "--out", str(out), "--json", *TINY])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["registry_sizes"] == [60, 40] and summary["data"] == [str(a), str(b)]
    assert len(summary["data_sha256"]) == 2 and summary["synthetic_rows"] == 100
    bundle = load_bundle(out / "model")
    assert bundle.average_sha256_computed() == summary["average_sha256"] == bundle.average_sha256
    assert bundle.aggregation_run == "" and bundle.run_id == summary["run_id"]
    assert bundle.schema.hash() == Schema.load(schema).hash()
    synthetic = pd.read_csv(out / "synthetic.csv")
    pd.testing.assert_frame_equal(synthetic, pd.read_csv(_write(bundle.sample(100, 0), tmp_path)))


def test_train_local_input_errors_are_one_line(registry_files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, _, schema = registry_files
    res = runner.invoke(app, ["train-local", "--data", str(a), *TINY])
    assert res.exit_code == 2 and "--data needs --schema" in res.stderr
    res = runner.invoke(app, ["train-local", "--data", str(a), "--schema", str(schema), "--registries", "3",
                                                *TINY])
    assert res.exit_code == 2 and "one file per registry" in res.stderr
    bad = tmp_path / "bad.csv"
    lines = a.read_text().splitlines()
    lines[6] = lines[6].replace(lines[6].split(",")[0], "1900", 1)  # year out of range on file line 7
    bad.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["train-local", "--data", str(bad), "--schema", str(schema), *TINY])
    assert res.exit_code == 2 and "line 7 (header is line 1), column 'year'" in res.stderr
    small = tmp_path / "small.csv"
    small.write_text("\n".join(lines[:5]) + "\n")
    res = runner.invoke(app, ["train-local", "--data", str(small), "--schema", str(schema), *TINY])
    assert res.exit_code == 2 and "4 data rows; at least 10 needed" in res.stderr
    assert "Traceback" not in res.output


# --------------------------------------------------------------------------- sample


CONFIG = TrainConfig(noise_dim=8, gen_dims=(16,), dis_dims=(16,), pac=2, batch_size=10, rounds=3)


@pytest.fixture()
def bundle(tmp_path: Path) -> Bundle:
    encoder = TabularEncoder(Schema.bundled("rotterdam"))
    gen, dis = build_models(encoder.output_dim, CONFIG.model_config(), 4)
    dvec = state_dict_to_vector(dis)
    return write_bundle(tmp_path / "model", generator=gen, discriminator_vector=dvec, encoder=encoder,
                        schema=encoder.schema, config=CONFIG, run_id="run-7", aggregation_run="run-7", round=2,
                        average_sha256=average_sha256(np.concatenate([state_dict_to_vector(gen), dvec])))


def test_sample_writes_the_bundles_records(bundle: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "synth.csv"
    res = runner.invoke(app, ["sample", "--model", str(bundle.path), "--rows", "25", "--seed", "3",
                                            "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["rows"] == 25 and summary["verified"] is None
    assert summary["average_sha256"] == bundle.average_sha256
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(_write(bundle.sample(25, 3), tmp_path)))


def _fake_ledger(monkeypatch: pytest.MonkeyPatch, agreed: dict[tuple[str, int], str]) -> list[tuple[Path, str]]:
    opened: list[tuple[Path, str]] = []

    @contextmanager
    def fake_open(home: Path, org: str) -> Iterator[AgreedHashLookup]:
        opened.append((home, org))
        yield lambda run, rnd: agreed[(run, rnd)]

    monkeypatch.setattr(sample_cmd, "open_ledger_lookup", fake_open)
    return opened


def test_sample_verify_accepts_the_agreed_model(bundle: Bundle, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _fake_ledger(monkeypatch, {("run-7", 2): bundle.average_sha256})
    out = tmp_path / "synth.csv"
    res = runner.invoke(app, ["sample", "--model", str(bundle.path), "--rows", "5", "--out", str(out),
                                            "--verify", "--home", str(tmp_path), "--org", "Registry2MSP", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["verified"]["agreed_sha256"] == bundle.average_sha256
    assert opened == [(tmp_path, "Registry2MSP")] and out.is_file()


def test_sample_verify_refuses_a_model_the_ledger_did_not_agree(bundle: Bundle, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    other = "ab" * 32
    _fake_ledger(monkeypatch, {("run-7", 2): other})
    out = tmp_path / "synth.csv"
    res = runner.invoke(app, ["sample", "--model", str(bundle.path), "--rows", "5", "--out", str(out),
                                            "--verify"])
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "sample refused" in lines[0]
    assert other in lines[0] and bundle.average_sha256 in lines[0]
    assert not out.exists() and "Traceback" not in res.output


def test_sample_verify_without_a_network_is_one_line(bundle: Bundle, tmp_path: Path) -> None:
    res = runner.invoke(app, ["sample", "--model", str(bundle.path), "--rows", "5",
                                            "--out", str(tmp_path / "s.csv"), "--verify", "--home", str(tmp_path)])
    assert res.exit_code == 1 and "no network profile" in res.stderr and "Traceback" not in res.output


def test_sample_refuses_a_damaged_bundle(bundle: Bundle, tmp_path: Path) -> None:
    (bundle.path / "encoder.json").write_text("{}")
    res = runner.invoke(app, ["sample", "--model", str(bundle.path), "--rows", "5",
                                            "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 1 and "encoder.json" in res.stderr and "sha256" in res.stderr


# --------------------------------------------------------------------------- GetRound


class FakeContract:
    def __init__(self, state: object) -> None:
        self.state = state
        self.calls: list[tuple[str, tuple[str | bytes, ...]]] = []

    def evaluate(self, fn: str, *args: str | bytes) -> bytes:
        self.calls.append((fn, args))
        return json.dumps(self.state).encode()


def test_agreed_hash_is_read_from_get_round() -> None:
    h = "cd" * 32
    contract = FakeContract({"status": "frozen", "agreed": True, "results": {"R1": h, "R2": h}})
    assert ledger_lookup(contract)("run-7", 119) == h
    assert contract.calls == [("GetRound", ("run-7", "119"))]
    nested = {"agreed": True, "results": {"R1": {"average_sha256": h}}}
    assert agreed_average_sha256(nested, "r", 0) == h


@pytest.mark.parametrize("state", [
    {"status": "frozen", "agreed": None, "results": {}},
    {"status": "frozen", "agreed": False, "results": {"R1": "aa" * 32, "R2": "bb" * 32}, "mismatched": ["R2"]},
    {"status": "frozen", "agreed": True, "results": {}},
    {"status": "frozen", "agreed": True, "results": {"R1": "aa" * 32, "R2": "bb" * 32}},
    [],
])
def test_no_single_agreed_hash_is_an_error(state: object) -> None:
    with pytest.raises(AgreedHashError):
        agreed_average_sha256(state, "run-7", 3)


def _write(frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "expected.csv"
    frame.to_csv(path, index=False)
    return path

"""Onboarding without a running network: registry homes, org definitions, the consortium
bundle and the foreign-key scan.

Every home is made by :func:`init_registry` (crypto only, no Fabric binaries) in
``tmp_path``. The bundle tests run Fabric's ``configtxgen`` (no node is started) and are
skipped when it is not built. Each refusal is checked for its error type and for the
field (or step) it names, so a check that stops refusing makes its test fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import socket
import ssl
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from synthreg.cli.main import app
from synthreg.network import onboarding
from synthreg.network.chaincode import _tar_gz
from synthreg.network.onboarding import (
    Bundle,
    OnboardingError,
    RegistryLauncher,
    _verify_blocks,
    block_orgs,
    create_consortium,
    foreign_private_keys,
    init_registry,
    registry_config,
)
from synthreg.network.orgdef import OrgDef, OrgDefError, check_reachable, load_org_def, load_org_defs
from synthreg.network.topology import Org

REPO_ROOT = Path(__file__).resolve().parents[2]
FABRIC_BIN = Path(os.environ.get("FABRIC_BIN", Path.home() / ".cache" / "synthreg" / "fabric" / "bin"))
BASE = 12000
needs_configtxgen = pytest.mark.skipif(not (FABRIC_BIN / "configtxgen").exists(),
                                       reason=f"Fabric configtxgen not built in {FABRIC_BIN} (scripts/bootstrap.sh)")
runner = CliRunner()


# --- helpers --------------------------------------------------------------------------
def _init(home: Path, msp_id: str, base_port: int = BASE, host: str = "127.0.0.1") -> Path:
    """A fresh registry home; returns its org-def.json."""
    init_registry(home, msp_id, host, base_port, FABRIC_BIN, REPO_ROOT)
    return home / "org-def.json"


def _org(msp_id: str) -> Org:
    return Org.from_msp_id(msp_id, BASE)


def _edited(src: Path, dst: Path, drop: tuple[str, ...] = (), **changes: Any) -> Path:
    data = json.loads(src.read_text())
    for name in drop:
        del data[name]
    data.update(changes)
    dst.write_text(json.dumps(data, indent=2))
    return dst


def _refused(exc: pytest.ExceptionInfo[OrgDefError], field: str, *needles: str) -> None:
    assert exc.value.field == field, str(exc.value)
    assert f"field '{field}'" in str(exc.value)
    for n in needles:
        assert n in exc.value.reason, exc.value.reason


def _expired_ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _free_base(msp_index: int = 1) -> int:
    """A base port whose org ``msp_index`` has its orderer and peer ports free right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            orderer = s.getsockname()[1]
        if orderer > 65000:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", orderer + 10))
        except OSError:
            continue
        return orderer - 100 * msp_index - 1
    raise RuntimeError("no two free ports found")


@contextmanager
def _tls_servers(*servers: tuple[int, Path, Path]) -> Iterator[None]:
    """TLS listeners on 127.0.0.1 (port, certificate, key) that complete handshakes."""
    stop = threading.Event()
    socks, threads = [], []

    def serve(sock: socket.socket, ctx: ssl.SSLContext) -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    for port, cert, key in servers:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        sock.settimeout(0.1)
        socks.append(sock)
        threads.append(threading.Thread(target=serve, args=(sock, ctx), daemon=True))
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        for s in socks:
            s.close()


def _node_tls(home: Path, msp_id: str, node: str) -> tuple[Path, Path]:
    org = _org(msp_id)
    tls = home / "crypto" / org.name / "nodes" / f"{node}.{org.domain}" / "tls"
    return tls / "server.crt", tls / "server.key"


def _one_red_line(res: Any, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in res.output


@pytest.fixture
def defs3(tmp_path: Path) -> list[Path]:
    """Org definitions of three fresh registries (Registry1..3MSP, base port 12000)."""
    return [_init(tmp_path / f"home{i}", f"Registry{i}MSP") for i in (1, 2, 3)]


# --- org definitions ------------------------------------------------------------------
def test_three_valid_definitions_load_sorted(defs3: list[Path]) -> None:
    defs = load_org_defs(list(reversed(defs3)), reachable=False)
    assert [d.msp_id for d in defs] == ["Registry1MSP", "Registry2MSP", "Registry3MSP"]
    assert [d.org.orderer_endpoint for d in defs] == [f"127.0.0.1:{BASE + 100 * i + 1}" for i in (1, 2, 3)]
    assert OrgDef.from_dict(defs[0].to_dict(), "again") == dataclasses.replace(defs[0], source="again")
    assert "PRIVATE KEY" not in "".join(p.read_text() for p in defs3)


def test_node_certificate_from_another_registry_is_a_wrong_chain(defs3: list[Path], tmp_path: Path) -> None:
    other = json.loads(defs3[1].read_text())["orderer_tls_cert"]
    bad = _edited(defs3[0], tmp_path / "bad.json", orderer_tls_cert=other)
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([bad, defs3[2]])
    _refused(exc, "orderer_tls_cert", "chain")
    assert exc.value.source == str(bad)


def test_leaf_certificate_as_ca_cert_is_refused(defs3: list[Path], tmp_path: Path) -> None:
    leaf = json.loads(defs3[0].read_text())["peer_tls_cert"]
    with pytest.raises(OrgDefError) as exc:
        load_org_def(_edited(defs3[0], tmp_path / "bad.json", ca_cert=leaf))
    _refused(exc, "ca_cert", "not a CA")


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("tls_ca_cert", "ca_cert", "identity CA"),          # the identity CA twice
    ("ca_cert", "expired", "not valid now"),
    ("ca_cert", "two", "holds 2 certificates"),
    ("ca_cert", "not pem", "not a PEM certificate"),
])
def test_bad_ca_certificates_are_refused(defs3: list[Path], tmp_path: Path, field: str, value: str,
                                         needle: str) -> None:
    data = json.loads(defs3[0].read_text())
    pem = {"ca_cert": data["ca_cert"], "expired": _expired_ca_pem(), "two": data["ca_cert"] + data["tls_ca_cert"],
           "not pem": "hello"}[value]
    with pytest.raises(OrgDefError) as exc:
        load_org_def(_edited(defs3[0], tmp_path / "bad.json", **{field: pem}))
    _refused(exc, field, needle)


def test_duplicate_msp_id_is_refused(tmp_path: Path) -> None:
    a = _init(tmp_path / "a", "Registry1MSP", BASE)
    b = _init(tmp_path / "b", "Registry1MSP", BASE + 1000)
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([a, b])
    _refused(exc, "msp_id", "duplicate", "Registry1MSP")


def test_one_registry_posing_as_two_is_a_duplicate_ca(defs3: list[Path], tmp_path: Path) -> None:
    twin = _edited(defs3[0], tmp_path / "twin.json", msp_id="Registry4MSP")  # same CAs, other ports
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([defs3[0], twin])
    _refused(exc, "ca_cert", "duplicate")


def test_same_endpoint_is_refused(tmp_path: Path) -> None:
    # Registry2 at base 11900 puts its peer and orderer on Registry1's (base 12000) ports.
    a = _init(tmp_path / "a", "Registry1MSP", BASE)
    b = _init(tmp_path / "b", "Registry2MSP", BASE - 100)
    assert load_org_def(a).org.orderer_endpoint == load_org_def(b).org.orderer_endpoint
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([a, b])
    _refused(exc, "host", "duplicate", f"127.0.0.1:{BASE + 111}")


@pytest.mark.parametrize("host", ["10.9.9.9", "registry.example.org"])
def test_host_missing_from_node_certificates_is_refused(defs3: list[Path], tmp_path: Path, host: str) -> None:
    with pytest.raises(OrgDefError) as exc:
        load_org_def(_edited(defs3[0], tmp_path / "bad.json", host=host))
    assert exc.value.field in ("orderer_tls_cert", "peer_tls_cert")
    assert host in exc.value.reason


def test_host_name_registry_loads(tmp_path: Path) -> None:
    d = load_org_def(_init(tmp_path / "h", "Registry5MSP", host="registry5.example.org"))
    assert d.org.peer_endpoint == f"registry5.example.org:{BASE + 511}"


@pytest.mark.parametrize(("change", "field", "needle"), [
    ({"drop": ("peer_tls_cert",)}, "peer_tls_cert", "missing"),
    ({"extra": 1}, "extra", "unknown field"),
    ({"msp_id": "Evil"}, "msp_id", "Registry<N>MSP"),
    ({"msp_id": "Registry0MSP"}, "msp_id", "Registry<N>MSP"),
    ({"format": "synthreg-org-def/0"}, "format", "is not"),
    ({"host": "bad host!"}, "host", "neither"),
    ({"host": 7}, "host", "string"),
    ({"base_port": "12000"}, "base_port", "integer"),
    ({"base_port": True}, "base_port", "integer"),
    ({"base_port": 80}, "base_port", "integer"),
    ({"base_port": 65500}, "base_port", "above 65535"),
    ({"share_public_key": "not a key"}, "share_public_key", "not a PEM public key"),
])
def test_malformed_definition_names_the_field(defs3: list[Path], tmp_path: Path, change: dict[str, Any],
                                               field: str, needle: str) -> None:
    drop = change.pop("drop", ())
    with pytest.raises(OrgDefError) as exc:
        load_org_def(_edited(defs3[0], tmp_path / "bad.json", drop=drop, **change))
    _refused(exc, field, needle)


def test_share_key_must_be_x25519(defs3: list[Path], tmp_path: Path) -> None:
    ec_pub = load_org_def(defs3[0]).ca_cert
    ec_key = x509.load_pem_x509_certificate(ec_pub.encode()).public_key()
    pem = ec_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(OrgDefError) as exc:
        load_org_def(_edited(defs3[0], tmp_path / "bad.json", share_public_key=pem))
    _refused(exc, "share_public_key", "X25519")


@pytest.mark.parametrize(("content", "field"), [(b"{not json", "(document)"), (b"[1, 2]", "(document)"),
                                                 (b"\xff\xfe", "(document)")])
def test_non_json_file_is_refused(tmp_path: Path, content: bytes, field: str) -> None:
    path = tmp_path / "org-def.json"
    path.write_bytes(content)
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([path])
    _refused(exc, field)
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([tmp_path / "missing.json"])
    _refused(exc, "(file)", "no such file")


# --- reachability ---------------------------------------------------------------------
def test_closed_ports_are_unreachable(tmp_path: Path) -> None:
    path = _init(tmp_path / "h", "Registry1MSP", _free_base())
    with pytest.raises(OrgDefError) as exc:
        load_org_defs([path], reachable=True)
    _refused(exc, "host", "orderer endpoint", "unreachable")


def test_nodes_answering_with_their_certificates_are_reachable(tmp_path: Path) -> None:
    base = _free_base()
    home = tmp_path / "h"
    d = load_org_def(_init(home, "Registry1MSP", base))
    with _tls_servers((d.org.port("orderer"), *_node_tls(home, "Registry1MSP", "orderer0")),
                      (d.org.port("peer"), *_node_tls(home, "Registry1MSP", "peer0"))):
        check_reachable(d, timeout=5)


def test_peer_down_is_named(tmp_path: Path) -> None:
    base = _free_base()
    home = tmp_path / "h"
    d = load_org_def(_init(home, "Registry1MSP", base))
    with _tls_servers((d.org.port("orderer"), *_node_tls(home, "Registry1MSP", "orderer0"))), \
            pytest.raises(OrgDefError) as exc:
        check_reachable(d, timeout=5)
    _refused(exc, "host", "peer endpoint")


def test_endpoint_answered_by_another_registrys_node_is_refused(tmp_path: Path) -> None:
    base = _free_base()
    d = load_org_def(_init(tmp_path / "h", "Registry1MSP", base))
    _init(tmp_path / "other", "Registry2MSP")
    other = _node_tls(tmp_path / "other", "Registry2MSP", "orderer0")
    with _tls_servers((d.org.port("orderer"), *other), (d.org.port("peer"), *other)), \
            pytest.raises(OrgDefError) as exc:
        check_reachable(d, timeout=5)
    _refused(exc, "host", "orderer endpoint", "CERTIFICATE_VERIFY_FAILED")


# --- consortium create: nothing is created on refusal --------------------------------
def test_create_with_a_bad_definition_creates_nothing(defs3: list[Path], tmp_path: Path) -> None:
    bad = _edited(defs3[2], tmp_path / "bad.json", msp_id="Evil")
    out = tmp_path / "new" / "bundle.json"
    with pytest.raises(OrgDefError) as exc:
        create_consortium([defs3[0], defs3[1], bad], out, FABRIC_BIN, reachable=False, log=lambda _m: None)
    _refused(exc, "msp_id")
    assert not out.parent.exists()


def test_create_refuses_an_existing_bundle_and_a_lone_registry(defs3: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    out.write_text("keep me")
    with pytest.raises(OnboardingError, match="exists"):
        create_consortium(defs3, out, FABRIC_BIN, reachable=False, log=lambda _m: None)
    assert out.read_text() == "keep me"
    with pytest.raises(OnboardingError, match="at least two"):
        create_consortium(defs3[:1], tmp_path / "one.json", FABRIC_BIN, reachable=False, log=lambda _m: None)
    assert not (tmp_path / "one.json").exists()


def test_create_checks_reachability_by_default(tmp_path: Path) -> None:
    base = _free_base(2)
    a = _init(tmp_path / "a", "Registry1MSP", base + 1000)
    b = _init(tmp_path / "b", "Registry2MSP", base)
    out = tmp_path / "bundle.json"
    with pytest.raises(OrgDefError) as exc:
        create_consortium([a, b], out, FABRIC_BIN, log=lambda _m: None)
    _refused(exc, "host", "endpoint")
    assert not out.exists()


# --- consortium bundle (configtxgen) --------------------------------------------------
def _block_config(block: bytes) -> tuple[Any, Any, Any, Any]:
    from fabric_protos.common import common_pb2, configtx_pb2

    blk = common_pb2.Block.FromString(block)
    env = common_pb2.Envelope.FromString(blk.data.data[0])
    payload = common_pb2.Payload.FromString(env.payload)
    return blk, env, payload, configtx_pb2.ConfigEnvelope.FromString(payload.data)


def _rewritten(block: bytes, mutate: Callable[[Any], None]) -> bytes:
    """``block`` with its config envelope changed by ``mutate`` (header and data re-serialised)."""
    blk, env, payload, conf = _block_config(block)
    mutate(conf.config)
    payload.data = conf.SerializeToString()
    env.payload = payload.SerializeToString()
    blk.data.data[0] = env.SerializeToString()
    return bytes(blk.SerializeToString())


def _bundle(defs: list[Path], out: Path) -> Bundle:
    return create_consortium(defs, out, FABRIC_BIN, reachable=False, log=lambda _m: None)


@needs_configtxgen
def test_create_writes_a_bundle_of_the_three_registries(defs3: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out" / "bundle.json"
    _bundle(defs3, out)
    bundle = Bundle.load(out)
    defs = {d.msp_id: d for d in bundle.org_defs}
    assert sorted(defs) == ["Registry1MSP", "Registry2MSP", "Registry3MSP"]
    assert sorted(bundle.blocks) == ["gan", "keys"]
    for block in bundle.blocks.values():
        orgs = block_orgs(block)
        assert sorted(orgs["Application"]) == sorted(orgs["Orderer"]) == sorted(defs)
        assert orgs["Consenters"] == {d.org.orderer_endpoint: d.orderer_tls_cert.strip() for d in defs.values()}
        for msp, o in orgs["Application"].items():
            assert o["root_certs"] == [defs[msp].ca_cert.strip()]
            assert o["tls_root_certs"] == [defs[msp].tls_ca_cert.strip()]
    _verify_blocks(bundle, FABRIC_BIN)
    assert "PRIVATE KEY" not in out.read_text()


@needs_configtxgen
def test_bundle_with_a_block_of_other_definitions_is_refused(defs3: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    _bundle(defs3, out)
    impostor = _init(tmp_path / "impostor", "Registry3MSP")
    other = _bundle([defs3[0], defs3[1], impostor], tmp_path / "other.json")
    data = json.loads(out.read_text())
    data["channels"]["gan"] = json.loads((tmp_path / "other.json").read_text())["channels"]["gan"]
    (tmp_path / "swapped.json").write_text(json.dumps(data))
    bundle = Bundle.load(tmp_path / "swapped.json")
    assert bundle.blocks["gan"] == other.blocks["gan"]
    with pytest.raises(OnboardingError, match="'gan'"):
        _verify_blocks(bundle)


@needs_configtxgen
def test_bundle_with_an_edited_ca_is_refused(defs3: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    _bundle(defs3, out)
    impostor = load_org_def(_init(tmp_path / "impostor", "Registry3MSP"))
    data = json.loads(out.read_text())
    data["org_defs"][2]["ca_cert"] = impostor.ca_cert  # a valid CA, just not Registry3's
    (tmp_path / "edited.json").write_text(json.dumps(data))
    bundle = Bundle.load(tmp_path / "edited.json")
    with pytest.raises(OnboardingError, match="orgs differ"):
        _verify_blocks(bundle)


@needs_configtxgen
def test_bundle_with_a_weakened_policy_is_refused(defs3: list[Path], tmp_path: Path) -> None:
    """Same orgs, same certificates, same consenters, but the channel's Admins policy turned
    from MAJORITY into ANY: one registry alone could then change the channel."""
    from fabric_protos.common import policies_pb2

    def any_admin(config: Any) -> None:
        policy = config.channel_group.policies["Admins"].policy
        meta = policies_pb2.ImplicitMetaPolicy.FromString(policy.value)
        assert meta.rule == policies_pb2.ImplicitMetaPolicy.MAJORITY
        meta.rule = policies_pb2.ImplicitMetaPolicy.ANY
        policy.value = meta.SerializeToString()

    good = _bundle(defs3, tmp_path / "bundle.json")
    weak = Bundle(good.org_defs, {**good.blocks, "gan": _rewritten(good.blocks["gan"], any_admin)},
                  good.batch_timeout)
    assert block_orgs(weak.blocks["gan"]) == block_orgs(good.blocks["gan"])
    with pytest.raises(OnboardingError, match=r"'gan'.*configuration"):
        _verify_blocks(weak, FABRIC_BIN)


@needs_configtxgen
def test_bundle_with_the_channels_swapped_is_refused(defs3: list[Path], tmp_path: Path) -> None:
    good = _bundle(defs3, tmp_path / "bundle.json")
    swapped = Bundle(good.org_defs, {"keys": good.blocks["gan"], "gan": good.blocks["keys"]}, good.batch_timeout)
    with pytest.raises(OnboardingError, match="channel"):
        _verify_blocks(swapped)


@needs_configtxgen
def test_join_refuses_a_tampered_bundle_before_touching_anything(defs3: list[Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def not_reached(*_a: object) -> None:
        raise AssertionError("join went past its checks")

    monkeypatch.setattr(onboarding.fabricconfig, "write_node_configs", not_reached)
    out = tmp_path / "bundle.json"
    _bundle(defs3, out)
    data = json.loads(out.read_text())
    data["org_defs"][2]["ca_cert"] = load_org_def(_init(tmp_path / "impostor", "Registry3MSP")).ca_cert
    (tmp_path / "edited.json").write_text(json.dumps(data))
    home = tmp_path / "home1"
    launcher = RegistryLauncher(registry_config(home, FABRIC_BIN, REPO_ROOT), lambda _m: None)
    with pytest.raises(OnboardingError, match="orgs differ"):
        launcher.join(tmp_path / "edited.json", FABRIC_BIN.parent / "config")
    assert not (home / "consortium").exists() and not (home / "artifacts").exists()
    # A consortium built from another home of the same MSP ID: not this registry's definition.
    other = _bundle([_init(tmp_path / "home1b", "Registry1MSP"), defs3[1], defs3[2]], tmp_path / "b.json")
    assert other.org_defs[0].ca_cert != load_org_def(defs3[0]).ca_cert
    with pytest.raises(OnboardingError, match="differs from this registry's own"):
        launcher.join(tmp_path / "b.json", FABRIC_BIN.parent / "config")
    assert not (home / "consortium").exists()


class _PastChecks(Exception):
    """Raised where join would start writing node configs (no node is ever started here)."""


@needs_configtxgen
def test_join_rerun_and_another_consortium(defs3: list[Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def past_checks(*_a: object) -> None:
        raise _PastChecks

    monkeypatch.setattr(onboarding.fabricconfig, "write_node_configs", past_checks)
    home = tmp_path / "home1"
    launcher = RegistryLauncher(registry_config(home, FABRIC_BIN, REPO_ROOT), lambda _m: None)
    first = tmp_path / "first.json"
    _bundle(defs3, first)
    with pytest.raises(_PastChecks):
        launcher.join(first, FABRIC_BIN.parent / "config")
    kept = home / "consortium" / "bundle.json"
    assert kept.read_bytes() == first.read_bytes()
    assert sorted(p.name for p in (home / "consortium").iterdir()) == [
        "Registry2MSP", "Registry3MSP", "bundle.json"]
    # After a reboot the kept copy is what an operator has at hand: joining with it again
    # must get as far as the first time (it was a SameFileError).
    with pytest.raises(_PastChecks):
        launcher.join(kept, FABRIC_BIN.parent / "config")
    # Another consortium that also names this registry: refused, and the kept bundle stays.
    second = tmp_path / "second.json"
    _bundle([defs3[0], defs3[1], _init(tmp_path / "impostor", "Registry3MSP")], second)
    with pytest.raises(OnboardingError, match="another consortium"):
        launcher.join(second, FABRIC_BIN.parent / "config")
    assert kept.read_bytes() == first.read_bytes()


@pytest.mark.parametrize(("change", "needle"), [
    ({"format": "other"}, "not a consortium bundle"),
    ({"channels": {"gan": ""}}, "channels"),
    ({"batch_timeout": None}, "batch_timeout"),
    ({"channels": {"gan": "!!", "keys": 5}}, "base64"),
])
def test_malformed_bundle_is_refused(defs3: list[Path], tmp_path: Path, change: dict[str, Any],
                                     needle: str) -> None:
    data = {"format": onboarding.BUNDLE_FORMAT, "batch_timeout": "10ms",
            "org_defs": [json.loads(p.read_text()) for p in defs3], "channels": {"gan": "", "keys": ""}}
    data.update(change)
    if data["batch_timeout"] is None:
        del data["batch_timeout"]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data))
    with pytest.raises(OnboardingError, match=needle):
        Bundle.load(path)


# --- init_registry --------------------------------------------------------------------
def test_init_is_idempotent_and_keeps_keys_private(tmp_path: Path) -> None:
    home = tmp_path / "h"
    first = init_registry(home, "Registry1MSP", "127.0.0.1", BASE, FABRIC_BIN, REPO_ROOT)
    again = init_registry(home, "Registry1MSP", "127.0.0.1", BASE, FABRIC_BIN, REPO_ROOT)
    assert again.ca_cert == first.ca_cert and again.to_dict() == first.to_dict()
    assert load_org_def(home / "org-def.json").to_dict() == first.to_dict()
    keys = [p for p in home.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert len(keys) >= 10
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys), keys


def test_init_refuses_a_foreign_folder(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "notes.txt").write_text("someone else's")
    with pytest.raises(OnboardingError, match="not empty"):
        init_registry(home, "Registry1MSP", "127.0.0.1", BASE, FABRIC_BIN, REPO_ROOT)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(("msp_id", "base_port", "host"), [
    ("Registry2MSP", BASE, "127.0.0.1"), ("Registry1MSP", BASE + 1000, "127.0.0.1"),
    ("Registry1MSP", BASE, "10.0.0.1")])
def test_init_refuses_a_home_of_another_registry(tmp_path: Path, msp_id: str, base_port: int, host: str) -> None:
    home = tmp_path / "h"
    d = init_registry(home, "Registry1MSP", "127.0.0.1", BASE, FABRIC_BIN, REPO_ROOT)
    with pytest.raises(OnboardingError, match="already holds registry Registry1MSP"):
        init_registry(home, msp_id, host, base_port, FABRIC_BIN, REPO_ROOT)
    assert load_org_def(home / "org-def.json").to_dict() == d.to_dict()


@pytest.mark.parametrize(("msp_id", "base_port", "host", "needle"), [
    ("Evil", BASE, "127.0.0.1", "Registry<N>MSP"),
    ("Registry1MSP", BASE, "not a host", "--host"),
    ("Registry1MSP", 80, "127.0.0.1", "--base-port"),
    ("Registry9MSP", 65000, "127.0.0.1", "--base-port"),
])
def test_init_refuses_bad_arguments_before_creating_anything(tmp_path: Path, msp_id: str, base_port: int,
                                                             host: str, needle: str) -> None:
    with pytest.raises(OnboardingError, match=re.escape(needle)):
        init_registry(tmp_path / "h", msp_id, host, base_port, FABRIC_BIN, REPO_ROOT)
    assert not (tmp_path / "h").exists()


def test_init_interrupted_can_be_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "h"

    def interrupted(self: RegistryLauncher) -> None:
        (self.cfg.crypto_dir / self.org.name / "msp").mkdir(parents=True)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(RegistryLauncher, "generate_crypto", interrupted)
        with pytest.raises(KeyboardInterrupt):
            init_registry(home, "Registry1MSP", "127.0.0.1", BASE, FABRIC_BIN, REPO_ROOT)
    d = init_registry(home, "Registry1MSP", "127.0.0.1", BASE, FABRIC_BIN, REPO_ROOT)
    assert load_org_def(home / "org-def.json") == dataclasses.replace(d, source=str(home / "org-def.json"))


# --- foreign private keys -------------------------------------------------------------
@pytest.fixture
def homes2(tmp_path: Path) -> tuple[Path, Path]:
    _init(tmp_path / "own", "Registry1MSP")
    _init(tmp_path / "other", "Registry2MSP")
    return tmp_path / "own", tmp_path / "other"


def _scan(home: Path) -> list[str]:
    return foreign_private_keys(home, home / "crypto" / "registry1")


def test_fresh_home_has_no_foreign_keys(homes2: tuple[Path, Path]) -> None:
    own, _ = homes2
    assert _scan(own) == []
    launcher = RegistryLauncher(registry_config(own, FABRIC_BIN, REPO_ROOT), lambda _m: None)
    assert launcher.scan_foreign_keys() == []


def test_copied_admin_key_is_found(homes2: tuple[Path, Path]) -> None:
    own, other = homes2
    src = other / "crypto" / "registry2" / "users" / "admin" / "msp" / "keystore" / "priv_sk"
    assert src.exists()
    dst = own / "crypto" / "registry1" / "users" / "admin" / "msp" / "keystore" / "priv_sk.registry2"
    shutil.copyfile(src, dst)
    assert _scan(own) == [str(dst)]
    (own / "stray.pem").write_bytes(src.read_bytes())
    assert sorted(_scan(own)) == sorted([str(dst), str(own / "stray.pem")])


def test_copied_identity_with_its_certificate_is_found(homes2: tuple[Path, Path]) -> None:
    """A foreign key copied together with its certificate (or public key) into the own
    crypto folder is still foreign: own means issued by this registry's CAs."""
    own, other = homes2
    root = own / "crypto" / "registry1"
    shutil.copytree(other / "crypto" / "registry2" / "users" / "admin" / "msp", root / "users" / "borrowed" / "msp")
    shutil.copytree(other / "crypto" / "registry2" / "users" / "admin" / "share-key", root / "share-key-2")
    assert sorted(_scan(own)) == sorted([str(root / "users" / "borrowed" / "msp" / "keystore" / "priv_sk"),
                                         str(root / "share-key-2" / "x25519_sk.pem")])


def test_key_inside_a_chaincode_package_is_found(homes2: tuple[Path, Path]) -> None:
    own, other = homes2
    foreign_key = (other / "crypto" / "registry2" / "users" / "admin" / "msp" / "keystore" / "priv_sk").read_text()
    own_key = (own / "crypto" / "registry1" / "tls-extra" / "ccserver-ganledger" / "server.key").read_text()
    (own / "artifacts").mkdir()
    clean = _tar_gz({"metadata.json": b"{}", "code.tar.gz": _tar_gz(
        {"connection.json": json.dumps({"client_key": own_key}).encode()})})
    (own / "artifacts" / "clean.tar.gz").write_bytes(clean)
    assert _scan(own) == []
    leaky = _tar_gz({"metadata.json": b"{}", "code.tar.gz": _tar_gz(
        {"connection.json": json.dumps({"client_key": foreign_key}).encode()})})
    (own / "artifacts" / "leaky.tar.gz").write_bytes(leaky)
    assert _scan(own) == [str(own / "artifacts" / "leaky.tar.gz")]


# --- CLI ------------------------------------------------------------------------------
def test_cli_create_with_a_bad_definition_is_one_line(defs3: list[Path], tmp_path: Path) -> None:
    bad = _edited(defs3[1], tmp_path / "bad.json", share_public_key="nope")
    out = tmp_path / "bundle.json"
    args = ["consortium", "create", "--org-def", str(defs3[0]), "--org-def", str(bad), "--out", str(out),
            "--no-check-reachable"]
    res = runner.invoke(app, args)
    _one_red_line(res, "consortium create failed", str(bad), "share_public_key")
    assert not out.exists()


def test_cli_init_and_check_keys(homes2: tuple[Path, Path], tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    res = runner.invoke(app, ["registry", "init", "--org", "Registry3MSP", "--host", "127.0.0.1",
                              "--base-port", str(BASE), "--home", str(home)])
    assert res.exit_code == 0, res.output
    assert f"127.0.0.1:{BASE + 301}" in res.stderr and (home / "org-def.json").exists()
    res = runner.invoke(app, ["registry", "init", "--org", "Registry4MSP", "--host", "127.0.0.1",
                              "--home", str(home)])
    _one_red_line(res, "registry init failed", "already holds registry Registry3MSP")
    assert runner.invoke(app, ["registry", "check-keys", "--home", str(home)]).exit_code == 0
    _, other = homes2
    shutil.copyfile(other / "crypto" / "registry2" / "users" / "admin" / "msp" / "keystore" / "priv_sk",
                    home / "leaked_sk")
    res = runner.invoke(app, ["registry", "check-keys", "--home", str(home)])
    assert res.exit_code == 1 and str(home / "leaked_sk") in res.stderr

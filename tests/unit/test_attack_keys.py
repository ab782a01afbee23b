"""Issue 10, item 7: key hygiene of the network launcher, one test per attack (no Fabric needed).

The orderer-admin attack itself is run against a real network in
tests/integration/test_attack_orderer_admin.py; here only its configuration.
The demo's audit secret: tests/unit/test_attack_audit_secret.py.
"""

from __future__ import annotations

import gzip
import io
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography import x509

from synthreg.network.chaincode import Deployer, write_private
from synthreg.network.launcher import Launcher
from synthreg.network.topology import NetworkConfig

REPO = Path(__file__).resolve().parents[2]


def _launcher(tmp_path: Path, n_orgs: int = 1) -> Launcher:
    cfg = NetworkConfig(home=tmp_path / "net", fabric_bin=tmp_path / "bin", repo_root=REPO, n_orgs=n_orgs)
    cfg.fabric_bin.mkdir(parents=True)
    for name in ("orderer", "peer"):
        (cfg.fabric_bin / name).touch()  # only their paths are used
    launcher = Launcher(cfg, log=lambda m: None)
    launcher.generate_crypto()
    return launcher


def _members(tar_gz: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tar_gz))) as tar:
        return {m.name: m for m in tar.getmembers()}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_attack_chaincode_client_key_world_readable(tmp_path: Path) -> None:
    """The peer's chaincode-client TLS key travels inline in connection.json (the peer reads
    it there); no copy of it may be readable by anyone but the owner: not the tar entry
    (the peer untars with its mode), not the package file, not the builder's outputs."""
    launcher = _launcher(tmp_path)
    org = launcher.cfg.orgs[0]
    _, pkg = Deployer(launcher).package("ganledger", org)
    outer = _members(pkg)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(pkg))) as tar:
        code_file = tar.extractfile("code.tar.gz")
        assert code_file is not None
        code = code_file.read()
    inner = _members(code)
    assert {n: stat.S_IMODE(m.mode) for n, m in {**outer, **inner}.items()} == {
        "metadata.json": 0o600, "code.tar.gz": 0o600, "connection.json": 0o600}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(code))) as tar:
        conn_file = tar.extractfile("connection.json")
        assert conn_file is not None
        conn = json.loads(conn_file.read())
    assert "PRIVATE KEY" in conn["client_key"]  # the reason for all of the above

    # the package file (Deployer.install), also over one an older launcher left at 0644
    path = tmp_path / "pkg.tar.gz"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, pkg)
    assert _mode(path) == 0o600 and path.read_bytes() == pkg

    # the external builder, run as the peer runs it, under a permissive umask, on a source
    # file extracted with a wide mode (a package installed by an older launcher)
    src, meta, bld, rel = (tmp_path / d for d in ("src", "meta", "bld", "rel"))
    for d in (src, meta, bld, rel):
        d.mkdir()
    (src / "connection.json").write_text(json.dumps(conn))
    (src / "connection.json").chmod(0o644)
    bin_dir = REPO / "network" / "builders" / "ccaas" / "bin"
    for argv in ([str(bin_dir / "build"), str(src), str(meta), str(bld)],
                 [str(bin_dir / "release"), str(bld), str(rel)]):
        subprocess.run(["sh", "-c", 'umask 022; exec "$@"', "sh", *argv], check=True)
    assert _mode(bld / "connection.json") == 0o600
    assert _mode(rel / "chaincode" / "server" / "connection.json") == 0o600


@pytest.mark.parametrize("index", [0, 1])
def test_orderer_admin_endpoint_trusts_its_own_org_only(tmp_path: Path, index: int) -> None:
    """Each orderer's admin endpoint (channel participation) trusts its own org's TLS CA
    only, while Raft keeps trusting every org's; the launcher's osnadmin client pair is
    issued by that same CA."""
    launcher = _launcher(tmp_path, n_orgs=2)
    org = launcher.cfg.orgs[index]
    own = str(launcher.crypto(org).tls_ca_cert)
    every = "[" + ",".join(str(launcher.crypto(o).tls_ca_cert) for o in launcher.cfg.orgs) + "]"
    env = launcher._orderer_spec(org).env
    assert env["ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED"] == "true"
    assert env["ORDERER_ADMIN_TLS_CLIENTROOTCAS"] == f"[{own}]"
    assert env["ORDERER_GENERAL_CLUSTER_ROOTCAS"] == every
    client_cert = launcher.crypto(org).node_dir("orderer0") / "tls" / "server.crt"
    issuer = x509.load_pem_x509_certificate(client_cert.read_bytes()).issuer
    assert issuer == x509.load_pem_x509_certificate(Path(own).read_bytes()).subject


def test_pprof_is_off_unless_asked_and_then_on_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Go's pprof endpoints (no TLS, no auth) are served only when a developer sets
    SYNTHREG_FABRIC_PPROF=1 for a local network, and then on loopback only, even for a
    registry whose nodes listen on its host's address."""
    launcher = _launcher(tmp_path, n_orgs=1)
    org = launcher.cfg.orgs[0]
    monkeypatch.delenv("SYNTHREG_FABRIC_PPROF", raising=False)
    assert "CORE_PEER_PROFILE_ENABLED" not in launcher._peer_spec(org).env
    assert "ORDERER_GENERAL_PROFILE_ENABLED" not in launcher._orderer_spec(org).env
    monkeypatch.setenv("SYNTHREG_FABRIC_PPROF", "true")  # only "1" turns it on
    assert "CORE_PEER_PROFILE_ENABLED" not in launcher._peer_spec(org).env
    monkeypatch.setenv("SYNTHREG_FABRIC_PPROF", "1")
    peer, orderer = launcher._peer_spec(org).env, launcher._orderer_spec(org).env
    assert peer["CORE_PEER_PROFILE_ENABLED"] == orderer["ORDERER_GENERAL_PROFILE_ENABLED"] == "true"
    assert peer["CORE_PEER_PROFILE_LISTENADDRESS"] == f"127.0.0.1:{org.port('peer_pprof')}"
    assert orderer["ORDERER_GENERAL_PROFILE_ADDRESS"] == f"127.0.0.1:{org.port('orderer_pprof')}"

"""Served secure-aggregation blobs (chain/blobs.py): real TLS servers on loopback with
certificates from throwaway org TLS CAs (network/pki.py), no ledger."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthreg.chain.blobs import (
    BlobEndpoint,
    BlobError,
    BlobFetcher,
    BlobServer,
    BlobStore,
    BlobTamperedError,
    BlobUnavailableError,
    open_served_blobs,
)
from synthreg.chain.runs import RunSpec, RunSpecError, training_fields
from synthreg.chain.secagg import AggregationConfig, LedgerMerger
from synthreg.data.datasets import dataset_schema
from synthreg.gan.federated import TrainConfig
from synthreg.network import pki
from synthreg.network.profile import OrgProfile, Profile

RUN = "run-1/a:b@c"  # run ids may hold '/', ':' and '@'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Org:
    """One org's blob TLS material, stores and endpoint."""

    def __init__(self, root: Path, name: str, ca: pki.KeyPair | None = None) -> None:
        self.name = name
        self.ca = ca or pki.make_ca(f"tlsca.{name}", name)
        pair = pki.issue(self.ca, "blobs", name, hosts=("127.0.0.1",), tls=True)
        d = root / name
        pki.write_tls(d / "tls", self.ca, pair)
        (d / "ca.pem").write_bytes(self.ca.cert_pem)
        self.cert, self.key, self.ca_pem = d / "tls" / "server.crt", d / "tls" / "server.key", d / "ca.pem"
        self.own, self.cache = BlobStore(d / "own"), BlobStore(d / "fetched")
        self.port = _free_port()
        self.server: BlobServer | None = None

    def endpoint(self) -> BlobEndpoint:
        return BlobEndpoint(self.name, f"127.0.0.1:{self.port}", self.ca_pem)

    def serve(self, members: list[Org], stores: tuple[BlobStore, ...] | None = None,
              inbox: bool = False) -> BlobServer:
        self.server = BlobServer(stores or (self.own, self.cache), ("127.0.0.1", self.port), self.cert, self.key,
                                 {o.name: o.ca_pem for o in members}, self.cache if inbox else None).start()
        return self.server

    def fetcher(self, orgs: list[Org]) -> BlobFetcher:
        return BlobFetcher(self.own, self.cache, {o.name: o.endpoint() for o in orgs}, self.cert, self.key,
                           timeout=5.0)


@pytest.fixture
def orgs(tmp_path: Path) -> Iterator[list[Org]]:
    made = [Org(tmp_path, f"Registry{i}MSP") for i in (1, 2, 3)]
    yield made
    for o in made:
        if o.server is not None:
            o.server.close()


def _fetch(org: Org, orgs: list[Org], sha: str, owner: str, **kw: Any) -> bytes:
    return org.fetcher(orgs).fetch(RUN, 3, sha, owner, [o.name for o in orgs], patience=0.0, **kw)


def test_a_member_fetches_the_owners_blob_over_mutual_tls_and_keeps_a_copy(orgs: list[Org]) -> None:
    r1, r2, r3 = orgs
    cas = orgs
    r1.serve(cas)
    data = b"masked vector " * 1000
    sha = r1.own.put(RUN, 3, data)
    assert _fetch(r2, orgs, sha, r1.name) == data
    assert r2.cache.get(RUN, 3, sha) == data  # kept, so r2 serves it too
    r1.server.close()  # type: ignore[union-attr]
    r1.server = None
    r2.serve(cas)
    assert _fetch(r3, orgs, sha, r1.name) == data  # the owner is down: another holder served it


def test_an_outsider_without_a_consortium_certificate_is_refused(orgs: list[Org], tmp_path: Path) -> None:
    r1, r2, _ = orgs
    r1.serve([r1, r2])
    sha = r1.own.put(RUN, 3, b"x" * 64)
    outsider = Org(tmp_path, "Outsider")  # its own CA, not among the server's client CAs
    with pytest.raises(BlobUnavailableError) as err:
        _fetch(outsider, [r1, outsider], sha, r1.name)
    assert "SSL" in str(err.value) or "Connection" in str(err.value)
    assert outsider.cache.get(RUN, 3, sha) is None


def test_a_server_posing_as_another_org_fails_the_fetchers_check(orgs: list[Org]) -> None:
    r1, r2, r3 = orgs
    sha = r1.own.put(RUN, 3, b"y" * 64)
    # r1's server answers at the endpoint the profile gives for r3: r3's TLS CA did not issue its cert
    r1.port = r3.port
    r1.serve(orgs)
    with pytest.raises(BlobUnavailableError) as err:
        _fetch(r2, [r3], sha, r3.name)
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


class _Lying(BlobStore):
    def get(self, run: str, rnd: int, sha: str) -> bytes | None:
        return b"not what the ledger names"


def test_bytes_that_do_not_match_the_hash_are_refused_and_the_next_holder_asked(orgs: list[Org],
                                                                                tmp_path: Path) -> None:
    r1, r2, r3 = orgs
    cas = orgs
    data = b"z" * 100
    sha = hashlib.sha256(data).hexdigest()
    r1.serve(cas, stores=(_Lying(tmp_path / "lie"),))
    r3.own.put(RUN, 3, data)
    r3.serve(cas)
    assert _fetch(r2, orgs, sha, r1.name) == data
    with pytest.raises(BlobUnavailableError) as err:
        _fetch(r2, [r1], hashlib.sha256(b"other").hexdigest(), r1.name)
    assert "expected sha256" in str(err.value)
    r2.serve(cas, stores=(_Lying(tmp_path / "lie2"),))
    with pytest.raises(BlobTamperedError):
        r1.fetcher(orgs)._get(r2.endpoint(), RUN, 3, sha)


def test_a_missing_blob_names_every_holder_asked(orgs: list[Org]) -> None:
    r1, r2, r3 = orgs
    r1.serve(orgs)
    sha = hashlib.sha256(b"never put").hexdigest()
    t0 = time.monotonic()
    with pytest.raises(BlobUnavailableError) as err:
        r2.fetcher(orgs).fetch(RUN, 3, sha, r1.name, [o.name for o in orgs], patience=2.5)
    assert 1.0 <= time.monotonic() - t0 < 2.5  # asked again 1 s later; the next pass (2 s on) is past patience
    assert set(err.value.tried) >= {f"{r1.name} (127.0.0.1:{r1.port})", f"{r3.name} (127.0.0.1:{r3.port})"}
    assert "HTTP 404" in err.value.tried[f"{r1.name} (127.0.0.1:{r1.port})"]
    assert "ConnectionRefusedError" in err.value.tried[f"{r3.name} (127.0.0.1:{r3.port})"]


def test_a_fetch_waits_for_an_owner_that_comes_back(orgs: list[Org]) -> None:
    r1, r2, _ = orgs
    sha = r1.own.put(RUN, 3, b"w" * 64)  # on r1's disk before its Submit; r1's server is down
    timer = threading.Timer(1.5, r1.serve, args=(orgs,))
    timer.start()
    try:
        assert r2.fetcher(orgs).fetch(RUN, 3, sha, r1.name, patience=20.0) == b"w" * 64
    finally:
        timer.join()


def test_a_pushed_blob_is_served_by_the_receiver_once_its_owner_is_gone(orgs: list[Org]) -> None:
    r1, r2, r3 = orgs
    r2.serve(orgs, inbox=True)
    r3.serve(orgs)  # takes no pushes
    data = b"masked before Submit " * 500
    sha = r1.own.put(RUN, 3, data)
    assert r1.fetcher(orgs).push(RUN, 3, data, [r2.name, r3.name, "Registry9MSP"], timeout=5.0) == [r2.name]
    assert r2.cache.get(RUN, 3, sha) == data  # r2 will not need to fetch it
    assert _fetch(r3, orgs, sha, r1.name) == data  # r1 never served: r2, which it pushed to, did


def test_a_push_is_refused_from_outsiders_for_bad_bytes_and_bounded_per_member(
        orgs: list[Org], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r1, r2, _ = orgs
    r2.serve([r1, r2], inbox=True)
    outsider = Org(tmp_path, "Outsider")
    # an outsider's TLS CA named like r1's: the handshake refuses it (no member CA signed its cert)
    mimic = Org(tmp_path, "Mimic", pki.make_ca(f"tlsca.{r1.name}", r1.name))
    for who in (outsider, mimic):
        assert who.fetcher(orgs).push(RUN, 3, b"junk", [r2.name]) == []
    ep = r2.endpoint()
    with pytest.raises(BlobError, match="do not hash to the name"):
        r1.fetcher(orgs)._put(ep, RUN, 3, hashlib.sha256(b"a").hexdigest(), b"b", 5.0)
    monkeypatch.setattr("synthreg.chain.blobs.MAX_PUSHED_PER_MEMBER", 2)
    shas = [r1.own.put(RUN, rnd, f"round {rnd}".encode()) for rnd in range(3)]
    for rnd in range(3):
        assert r1.fetcher(orgs).push(RUN, rnd, f"round {rnd}".encode(), [r2.name]) == [r2.name]
    assert [r2.cache.get(RUN, rnd, shas[rnd]) is not None for rnd in range(3)] == [False, True, True]


def _count_connections(server: BlobServer) -> list[int]:
    accepted = [0]
    inner = server._server.get_request

    def counted() -> Any:
        accepted[0] += 1
        return inner()

    server._server.get_request = counted  # type: ignore[method-assign]
    return accepted


def test_a_fetcher_keeps_one_connection_per_server_alive(orgs: list[Org]) -> None:
    """Pushes and fetches of many rounds share one mutual-TLS connection (one handshake)."""
    r1, r2, _ = orgs
    accepted = _count_connections(r2.serve(orgs, inbox=True))
    fetcher = r1.fetcher(orgs)
    for rnd in range(4):
        data = f"round {rnd} ".encode() * 100
        assert fetcher.push(RUN, rnd, data, [r2.name], timeout=5.0) == [r2.name]
        r2.own.put(RUN, 10 + rnd, data[::-1])
        assert fetcher._get(r2.endpoint(), RUN, 10 + rnd, hashlib.sha256(data[::-1]).hexdigest()) == data[::-1]
    with pytest.raises(BlobError, match="HTTP 404"):
        fetcher._get(r2.endpoint(), RUN, 3, hashlib.sha256(b"absent").hexdigest())
    first = (b"round 0 " * 100)[::-1]
    assert fetcher._get(r2.endpoint(), RUN, 10, hashlib.sha256(first).hexdigest()) == first
    assert accepted[0] == 2  # one connection for 9 requests, a second after the 404 dropped it
    fetcher.close()


def test_a_kept_connection_the_server_ended_is_replaced(orgs: list[Org], monkeypatch: pytest.MonkeyPatch) -> None:
    """The server ends idle connections (IDLE_S) and all of them when it closes: the
    next request reconnects once, to a server that is back; none reaches a closed one."""
    r1, r2, _ = orgs
    monkeypatch.setattr("synthreg.chain.blobs.IDLE_S", 0.3)
    accepted = _count_connections(r2.serve(orgs, inbox=True))
    fetcher = r1.fetcher(orgs)
    assert fetcher.push(RUN, 0, b"a" * 64, [r2.name]) == [r2.name]
    time.sleep(0.8)  # idle past IDLE_S: the server ended it
    assert fetcher.push(RUN, 1, b"b" * 64, [r2.name]) == [r2.name]
    assert accepted[0] == 2
    r2.server.close()  # type: ignore[union-attr]
    r2.server = None
    assert fetcher.push(RUN, 2, b"c" * 64, [r2.name]) == []  # the kept connection was cut with the server
    r2.serve(orgs, inbox=True)
    assert fetcher.push(RUN, 3, b"d" * 64, [r2.name]) == [r2.name]
    fetcher.close()


def test_store_is_atomic_checks_names_drops_a_corrupt_file_and_prunes_rounds(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "s")
    shas = [store.put(RUN, rnd, f"round {rnd}".encode()) for rnd in range(4)]
    assert store.put(RUN, 0, b"round 0") == shas[0]
    assert not list((tmp_path / "s").rglob("*.tmp"))
    with pytest.raises(BlobError):
        store.get(RUN, 0, "../../etc/passwd")
    path = next(p for p in (tmp_path / "s").rglob(shas[1]))
    path.write_bytes(b"tampered")
    assert store.get(RUN, 1, shas[1]) is None and not path.exists()
    assert store.prune(RUN, 3) == 3
    assert store.get(RUN, 0, shas[0]) is None and store.get(RUN, 3, shas[3]) == b"round 3"
    assert store.prune("another run", 10) == 0


def _spec(**kw: Any) -> RunSpec:
    return RunSpec(("Registry1MSP", "Registry2MSP", "Registry3MSP"), dataset_schema("rotterdam").dump(),
                   TrainConfig(rounds=4, local_iters=2, num_threads=1), 2, (3,), "c-1", **kw)


def test_the_placement_is_part_of_the_agreed_run_and_of_the_aggregation_config() -> None:
    served = _spec(blobs="served")
    assert json.loads(served.to_json())["config"]["blobs"] == "served"
    assert RunSpec.from_json(served.to_json()) == served
    # the auditor reads the training config back from the agreed text (the DP budget check)
    assert TrainConfig.from_dict(training_fields(json.loads(served.to_json())["config"])) == served.config
    assert _spec().blobs == "served"  # the default
    on_ledger = _spec(blobs="ledger")
    assert "blobs" not in json.loads(on_ledger.to_json())["config"]  # the text of a spec from before served blobs
    assert RunSpec.from_json(on_ledger.to_json()) == on_ledger
    with pytest.raises(RunSpecError, match="blobs must be one of"):
        _spec(blobs="cloud")
    cfg = AggregationConfig.default(served.participants, 10, blobs="served")
    assert json.loads(cfg.to_json())["blobs"] == "served"
    assert AggregationConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert "blobs" not in json.loads(AggregationConfig.default(served.participants, 10).to_json())
    with pytest.raises(ValueError, match="blobs must be one of"):
        AggregationConfig.default(served.participants, 10, blobs="cloud")
    with pytest.raises(ValueError, match="needs a blob fetcher"):
        LedgerMerger(None, "Registry1MSP", "r", cfg)  # type: ignore[arg-type]


def test_a_network_made_before_served_blobs_gets_a_clear_error(tmp_path: Path) -> None:
    org = OrgProfile("Registry1MSP", "127.0.0.1:7111", "peer0", "127.0.0.1:7101", "", tmp_path / "ca.pem", {},
                     None, None, tmp_path / "share")  # no blob endpoint, no crypto root
    profile = Profile(tmp_path, ("gan",), {}, {"Registry1MSP": org}, "10ms")
    with pytest.raises(BlobError, match="no blob-server TLS pair or endpoint"):
        open_served_blobs(profile, "Registry1MSP", tmp_path / "blobs")

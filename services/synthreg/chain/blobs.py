"""Secure-aggregation blobs kept off the ledger (run config ``blobs: served``; issue 11).

With ``blobs: ledger`` every masked vector is a ``PutBlob`` transaction: ~0.69 MB per
registry per round in every peer's blocks and state and in every orderer's blocks
(DESIGN.md §4 allows "a blob store with the hash on-chain"). With ``blobs: served`` (the
default) only the hashes go on the ledger (``Submit``), and each merger keeps its own
masked vector in its registry's state, **pushes** it to the round's other mergers before
its ``Submit`` names it (:meth:`BlobFetcher.push`) and serves it to the consortium's
mergers over **mutual TLS** from :class:`BlobServer` at its org's blob endpoint
(``host:base+100·i+31``, in the network profile):

* the server's certificate is issued by its org's TLS CA (``tls-extra/blobs``, made
  with the org's other TLS material); a fetcher checks it against *that* org's TLS CA
  and the endpoint's host, so no other member can pose as the owner;
* the server asks every client for a certificate from one of the consortium's TLS CAs
  (the network profile's members): nobody outside the consortium reads a blob. A masked
  vector alone is uniformly random; with the round's reveals (on the ledger, readable by
  members only) the sum is not, so the reader set stays the ledger's;
* a blob's name is its sha256, which the submitter committed to on the ledger before
  anyone fetches: :class:`BlobFetcher` checks every byte it receives against that hash,
  so a wrong or tampered blob is refused (:class:`BlobTamperedError`) whoever served it;
* a push is a ``PUT`` from a member (the server tells which by the TLS CA that signed
  the client certificate, checked by signature); the receiver keeps the bytes only if
  they hash to the name, at most :data:`MAX_PUSHED_PER_MEMBER` per member, so no member
  fills another's disk. Pushing before ``Submit`` is what makes served blobs safe: a
  survivor cut off right after its ``Submit`` (the host-cut test) has already handed its
  blob to every reachable peer of the round, which serve it to the rest;
* content addressing lets any holder serve: a fetcher keeps what it fetched and serves
  it too, and asks the owner first, then every other participant. A blob that reached
  no other merger (all its pushes failed) stalls the round only until its owner is back
  (it is on its disk before the ``Submit``).

Connections: a fetcher keeps one mutual-TLS connection per blob server alive (HTTP/1.1
keep-alive), so a round's pushes and fetches pay no handshake (each cost either side ~5 ms of
CPU, on the round's critical path before the ``Submit``); a server ends a connection idle for
:data:`IDLE_S` and all of them when it closes, and the fetcher reconnects once.

Retention: a merger keeps its own blobs (``state/blobs/own``), so a registry that fell
behind can still compute every round it missed; the copies it fetched or was pushed
(``state/blobs/fetched``) go once its round is recorded (:meth:`BlobStore.prune`). The
audit copies the auditor checks live in the registry's workspace
(:mod:`synthreg.workspace`) as before, not here.

Errors: :class:`BlobUnavailableError` (no holder served it: each tried endpoint and
why), :class:`BlobTamperedError` (bytes that do not hash to their name).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from synthreg.workspace import sha256_hex

if TYPE_CHECKING:
    from synthreg.network.profile import Profile

__all__ = [
    "BLOB_MODES",
    "BlobEndpoint",
    "BlobError",
    "BlobFetcher",
    "BlobServer",
    "BlobStore",
    "BlobTamperedError",
    "BlobUnavailableError",
    "endpoints_of",
    "open_served_blobs",
    "tls_cas_of",
]

BLOB_MODES = ("ledger", "served")
"""Where a run's secure-aggregation blobs live (``RunSpec.blobs``, chaincode ``AggConfig.Blobs``)."""
_SHA = re.compile(r"^[0-9a-f]{64}$")
_PATH = re.compile(r"^/v1/blobs/(?P<run>[^/]{1,800})/(?P<round>0|[1-9][0-9]{0,8})/(?P<sha>[0-9a-f]{64})$")
MAX_BLOB_BYTES = 16 * 1024 * 1024
"""the ledger's PutBlob limit, kept for served blobs"""
MAX_PUSHED_PER_MEMBER = 8
"""pushed blobs a server keeps per member (a merger prunes its inbox every round)"""
IDLE_S = 30.0
"""a blob server ends a kept-alive connection idle this long (a fetcher reconnects)"""
_CLOSED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError)
"""what a request on a kept-alive connection the server has closed meanwhile raises"""
log = logging.getLogger("synthreg.chain.blobs")


class BlobError(RuntimeError):
    """Base of the served-blob failures."""


class BlobTamperedError(BlobError):
    """Bytes served or stored under a hash that they do not hash to."""

    def __init__(self, where: str, expected: str, actual: str) -> None:
        super().__init__(f"blob from {where}: expected sha256 {expected}, got {actual}")
        self.where, self.expected, self.actual = where, expected, actual


class BlobUnavailableError(BlobError):
    """No holder served the blob; ``tried`` maps each endpoint to why."""

    def __init__(self, run: str, rnd: int, sha: str, tried: Mapping[str, str]) -> None:
        reasons = "; ".join(f"{who}: {why}" for who, why in tried.items()) or "no holder to ask"
        super().__init__(f"blob {sha} of run {run} round {rnd} is not available ({reasons})")
        self.run, self.round, self.sha, self.tried = run, rnd, sha, dict(tried)


def _run_dir(run: str) -> str:
    """A directory name for any run id (run ids may hold '/', ':' and '@')."""
    return hashlib.sha256(run.encode()).hexdigest()[:32]


class BlobStore:
    """Blobs of served runs below ``root``: ``<root>/<h(run)>/<round>/<sha256>``. Writes are
    atomic (temp file + rename, fsynced: a blob is on disk before its ``Submit``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, run: str, rnd: int, sha: str) -> Path:
        if not _SHA.match(sha) or rnd < 0:
            raise BlobError(f"not a blob name: round {rnd}, sha256 {sha!r}")
        return self.root / _run_dir(run) / str(rnd) / sha

    def put(self, run: str, rnd: int, data: bytes) -> str:
        """Keep ``data`` for ``run`` round ``rnd``; returns its sha256 (idempotent)."""
        sha = sha256_hex(data)
        path = self._path(run, rnd, sha)
        if path.exists():
            return sha
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return sha

    def get(self, run: str, rnd: int, sha: str) -> bytes | None:
        """The blob if kept here and intact; a file that no longer hashes to its name is
        removed (logged) and treated as absent, so it is fetched again."""
        path = self._path(run, rnd, sha)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        actual = sha256_hex(data)
        if actual != sha:
            log.warning("blob store %s: %s hashes to %s: removed", self.root, path, actual)
            path.unlink(missing_ok=True)
            return None
        return data

    def remove(self, run: str, rnd: int, sha: str) -> None:
        self._path(run, rnd, sha).unlink(missing_ok=True)

    def prune(self, run: str, keep_from: int) -> int:
        """Remove ``run``'s rounds before ``keep_from``; returns how many rounds went."""
        base = self.root / _run_dir(run)
        gone = 0
        with contextlib.suppress(FileNotFoundError):
            for d in base.iterdir():
                if d.name.isdigit() and int(d.name) < keep_from:
                    shutil.rmtree(d, ignore_errors=True)
                    gone += 1
        return gone


@dataclass(frozen=True)
class BlobEndpoint:
    """One org's blob server as a fetcher dials it."""

    msp: str
    endpoint: str
    """host:port"""
    tls_ca_cert: Path
    """the org's TLS CA, which must have issued the server's certificate"""

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise BlobError(f"{self.msp}: blob endpoint {self.endpoint!r} is not host:port")
        return host.strip("[]"), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _TLSServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.request.do_handshake()  # here, in the request's thread: a slow client holds only its own
        super().setup()

    def do_GET(self) -> None:
        m = _PATH.match(self.path)
        data = None
        if m is not None:
            for store in self.server.stores:
                with contextlib.suppress(BlobError):
                    data = store.get(unquote(m["run"]), int(m["round"]), m["sha"])
                if data is not None:
                    break
        if data is None:
            self._reply(404, b"not found\n", "text/plain")
            return
        self._reply(200, data, "application/octet-stream")

    def do_PUT(self) -> None:
        """A member pushes its own masked vector before its ``Submit`` names it (see
        :meth:`BlobFetcher.push`): kept in the inbox store if the bytes hash to the name."""
        m = _PATH.match(self.path)
        try:
            length = int(self.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        sender = self.server.sender_of(self.request)
        if m is None or self.server.inbox is None or sender is None or not 0 < length <= MAX_BLOB_BYTES:
            why = ("not a blob path" if m is None else "this server takes no pushes" if self.server.inbox is None
                   else "no member's TLS CA issued the client certificate" if sender is None
                   else f"blob length {length} outside [1, {MAX_BLOB_BYTES}]")
            self.close_connection = True
            self._reply(403 if sender is None else 400, f"refused: {why}\n".encode(), "text/plain")
            return
        data = self.rfile.read(length)
        if sha256_hex(data) != m["sha"]:
            self._reply(400, b"refused: the bytes do not hash to the name\n", "text/plain")
            return
        self.server.keep_pushed(sender, unquote(m["run"]), int(m["round"]), m["sha"], data)
        self._reply(201, b"kept\n", "text/plain")

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("blob server %s: " + format, self.client_address[0], *args)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], stores: Sequence[BlobStore], context: ssl.SSLContext,
                 inbox: BlobStore | None) -> None:
        self.stores = tuple(stores)
        self.context = context
        self.inbox = inbox
        self.member_cas: dict[str, x509.Certificate] = {}
        self._pushed: dict[str, list[tuple[str, int, str]]] = {}
        self._lock = threading.Lock()
        self.live: set[ssl.SSLSocket] = set()  # kept-alive connections, cut on close
        super().__init__(addr, _Handler)

    def sender_of(self, sock: ssl.SSLSocket) -> str | None:
        """The member whose TLS CA signed the client's certificate (checked by signature,
        not by issuer name: a member may give its CA any name)."""
        der = sock.getpeercert(binary_form=True)
        if not der:
            return None
        cert = x509.load_der_x509_certificate(der)
        for msp, ca in self.member_cas.items():
            with contextlib.suppress(ValueError, TypeError, InvalidSignature):
                cert.verify_directly_issued_by(ca)
                return msp
        return None

    def keep_pushed(self, sender: str, run: str, rnd: int, sha: str, data: bytes) -> None:
        """Keep a pushed blob; each member holds at most :data:`MAX_PUSHED_PER_MEMBER` here
        (its oldest go first: a lagging merger then fetches those from their owner), so
        no member fills another's disk."""
        assert self.inbox is not None
        with self._lock:
            self.inbox.put(run, rnd, data)
            mine = self._pushed.setdefault(sender, [])
            if (run, rnd, sha) not in mine:
                mine.append((run, rnd, sha))
            while len(mine) > MAX_PUSHED_PER_MEMBER:
                self.inbox.remove(*mine.pop(0))

    def get_request(self) -> tuple[ssl.SSLSocket, object]:
        sock, addr = self.socket.accept()
        sock.settimeout(IDLE_S)
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self.live.add(tls)
        return tls, addr

    def shutdown_request(self, request: object) -> None:
        with self._lock:
            self.live.discard(request)
        super().shutdown_request(request)  # type: ignore[arg-type]

    def cut_live(self) -> None:
        """End every kept-alive connection (a closed server serves nobody any more)."""
        with self._lock:
            live, self.live = list(self.live), set()
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("blob server: request from %s failed", client_address, exc_info=True)


class BlobServer:
    """Serves the blobs of ``stores`` on ``bind`` (host, port) to clients with a certificate from one of
    ``client_cas`` (the consortium's TLS CAs, by member), presenting ``cert``/``key`` (issued
    by the own org's TLS CA), and keeps what members push in ``inbox`` (one of ``stores``;
    ``None``: no pushes). TLS 1.2 or later; plain connections fail the handshake."""

    def __init__(self, stores: Sequence[BlobStore], bind: tuple[str, int], cert: Path, key: Path,
                 client_cas: Mapping[str, Path], inbox: BlobStore | None = None) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert), str(key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._server = _TLSServer(bind, stores, ctx, inbox)
        self.trust(client_cas)
        self._thread = threading.Thread(target=self._server.serve_forever, name="blob-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def trust(self, client_cas: Mapping[str, Path]) -> None:
        """Also admit clients of ``client_cas`` (member -> its TLS CA) from now on (a registry
        that joined the consortium since the server started; CAs are only ever added)."""
        for msp, ca in client_cas.items():
            if msp not in self._server.member_cas:
                self._server.context.load_verify_locations(cafile=str(ca))
                self._server.member_cas[msp] = x509.load_pem_x509_certificate(ca.read_bytes())

    def start(self) -> BlobServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.cut_live()
        self._thread.join(timeout=5.0)


class BlobFetcher:
    """Gets a served blob: from the own stores, else from its owner's blob server, else
    from any other holder's, checking the bytes against the hash; keeps what it fetched
    in ``cache`` (so it serves it too). ``own`` holds the blobs this merger submits.
    Presents ``cert``/``key`` (the own org's blob TLS pair)."""

    def __init__(self, own: BlobStore, cache: BlobStore, endpoints: Mapping[str, BlobEndpoint],
                 cert: Path, key: Path, timeout: float = 30.0) -> None:
        self.own, self.cache, self.endpoints, self.timeout = own, cache, dict(endpoints), timeout
        self._cert, self._key = cert, key
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._conns: dict[str, http.client.HTTPSConnection] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _context(self, ep: BlobEndpoint) -> ssl.SSLContext:
        ctx = self._contexts.get(ep.msp)
        if ctx is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ep.tls_ca_cert))
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(self._cert), str(self._key))
            self._contexts[ep.msp] = ctx
        return ctx

    def _request(self, ep: BlobEndpoint, method: str, path: str, body: bytes | None, timeout: float,
                 limit: int) -> tuple[int, bytes]:
        """``method path`` on ``ep``'s blob server over one kept-alive mutual-TLS connection
        per endpoint (a TLS handshake costs each side ~5 ms of CPU, and a round pushes to
        every other merger, issue 11): the status and at most ``limit`` bytes of the body
        (its ``Content-Length``). A reused connection the server has closed meanwhile
        (idle for :data:`IDLE_S`, or restarted) is replaced once; blob requests are
        idempotent (content-addressed), so the retry is safe. After an error reply, or
        any failure, the connection is dropped."""
        with self._locks_lock:
            lock = self._locks.setdefault(ep.msp, threading.Lock())
        with lock:
            for attempt in (0, 1):
                conn = self._conns.pop(ep.msp, None)
                reused = conn is not None
                if conn is None:
                    host, port = ep.host_port
                    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context(ep))
                else:
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                try:
                    conn.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"}
                                 if body is not None else {})
                    resp = conn.getresponse()
                    length = int(resp.getheader("Content-Length") or -1)
                    data = resp.read(length) if 0 <= length <= limit else resp.read(min(limit, 4096))
                except _CLOSED as exc:
                    conn.close()
                    if attempt == 0 and reused:
                        log.debug("blob connection to %s was closed (%s): reconnecting", ep.msp, type(exc).__name__)
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                if resp.status in (200, 201) and 0 <= length <= limit and not resp.will_close:
                    self._conns[ep.msp] = conn
                else:
                    conn.close()
                if resp.status in (200, 201) and not 0 < length <= limit:
                    raise BlobError(f"blob length {length} outside [1, {limit}]")
                return resp.status, data
            raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, ep: BlobEndpoint, run: str, rnd: int, sha: str) -> bytes:
        status, data = self._request(ep, "GET", f"/v1/blobs/{quote(run, safe='')}/{rnd}/{sha}", None,
                                     self.timeout, MAX_BLOB_BYTES)
        if status != 200:
            raise BlobError(f"HTTP {status}")
        actual = sha256_hex(data)
        if actual != sha:
            raise BlobTamperedError(f"{ep.msp} ({ep.endpoint})", sha, actual)
        return data

    def _put(self, ep: BlobEndpoint, run: str, rnd: int, sha: str, data: bytes, timeout: float) -> None:
        status, body = self._request(ep, "PUT", f"/v1/blobs/{quote(run, safe='')}/{rnd}/{sha}", data, timeout, 4096)
        if status != 201:
            raise BlobError(f"HTTP {status}: {body.decode('utf-8', 'replace').strip()}")

    def close(self) -> None:
        """Close the kept-alive connections."""
        with self._locks_lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()

    def push(self, run: str, rnd: int, data: bytes, to: Sequence[str], timeout: float = 10.0) -> list[str]:
        """Hand ``data`` (kept in the own store) to the blob servers of ``to``, in parallel,
        before the ``Submit`` that names it: then a submitter cut off right after its
        ``Submit`` does not stall the round, whoever it pushed to serves the blob (and the
        receivers need not fetch it). Best effort: returns who took it; the others fetch
        it later from any holder."""
        sha = sha256_hex(data)
        took: list[str] = []
        lock = threading.Lock()

        def one(msp: str) -> None:
            ep = self.endpoints.get(msp)
            if ep is None:
                return
            try:
                self._put(ep, run, rnd, sha, data, timeout)
            except (OSError, http.client.HTTPException, BlobError, ValueError) as exc:
                log.info("blob %s of run %s round %d: not pushed to %s (%s): %s: %s; it fetches it later",
                         sha[:12], run, rnd, msp, ep.endpoint, type(exc).__name__, exc)
                return
            with lock:
                took.append(msp)

        threads = [threading.Thread(target=one, args=(m,), daemon=True) for m in to]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(took)

    def fetch(self, run: str, rnd: int, sha: str, owner: str, holders: Sequence[str] = (),
              patience: float = 120.0) -> bytes:
        """The blob ``sha`` that ``owner`` submitted in ``run`` round ``rnd``. Asks the
        owner, then ``holders`` (other participants that may have fetched it), pass after
        pass (1, 2, 4, 5, 5 ... seconds apart) for up to ``patience`` seconds: a merger
        killed after its ``Submit`` is restarted by its supervisor and serves its blob
        from disk again. Raises :class:`BlobUnavailableError` naming every refusal."""
        for store in (self.own, self.cache):
            kept = store.get(run, rnd, sha)
            if kept is not None:
                return kept
        order = [owner, *(h for h in holders if h != owner)]
        tried: dict[str, str] = {}
        deadline, pause = time.monotonic() + patience, 1.0
        while True:
            for msp in order:
                ep = self.endpoints.get(msp)
                if ep is None:
                    tried[msp] = "no blob endpoint in the network profile"
                    continue
                try:
                    data = self._get(ep, run, rnd, sha)
                except BlobTamperedError as exc:
                    tried[msp] = str(exc)
                    log.warning("%s", exc)
                    continue
                except (OSError, http.client.HTTPException, BlobError, ValueError) as exc:
                    tried[f"{msp} ({ep.endpoint})"] = f"{type(exc).__name__}: {exc}"
                    continue
                self.cache.put(run, rnd, data)
                return data
            if time.monotonic() + pause > deadline:
                raise BlobUnavailableError(run, rnd, sha, tried)
            log.info("blob %s of run %s round %d: no holder served it yet (%s); asking again in %.0f s",
                     sha[:12], run, rnd, "; ".join(tried.values()), pause)
            time.sleep(pause)
            pause = min(2 * pause, 5.0)


def tls_cas_of(profile: Profile) -> dict[str, Path]:
    """Every member's TLS CA certificate in the network profile."""
    return {m: o.tls_ca_cert for m, o in profile.orgs.items()}


def endpoints_of(profile: Profile) -> dict[str, BlobEndpoint]:
    """Every member's blob endpoint in the network profile (one written before served blobs has none)."""
    return {m: BlobEndpoint(m, o.blob_endpoint, o.tls_ca_cert) for m, o in profile.orgs.items() if o.blob_endpoint}


def open_served_blobs(profile: Profile, msp: str, root: Path) -> tuple[BlobFetcher, BlobServer]:
    """``msp``'s served blobs: its own and fetched stores below ``root`` (``own/``,
    ``fetched/``), its blob server started at its org's blob endpoint (trusting every
    member's TLS CA in ``profile``) and its fetcher of the others'. The caller closes the
    server. Raises :class:`BlobError` when the org has no blob TLS pair or endpoint (a
    network made before served blobs)."""
    org = profile.org(msp)
    tls = org.blob_tls_dir
    if tls is None or not org.blob_endpoint:
        raise BlobError(f"{msp}: the run serves its blobs (blobs: served), but {profile.home} has no "
                        "blob-server TLS pair or endpoint (a network made before they existed)")
    own, cache = BlobStore(root / "own"), BlobStore(root / "fetched")
    server = BlobServer((own, cache), BlobEndpoint(msp, org.blob_endpoint, org.tls_ca_cert).host_port,
                        tls / "server.crt", tls / "server.key", tls_cas_of(profile), inbox=cache).start()
    return BlobFetcher(own, cache, endpoints_of(profile), tls / "server.crt", tls / "server.key"), server

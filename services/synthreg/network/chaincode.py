"""Chaincode-as-a-service deployment: build, package, install, run, approve, commit.

Each org runs its own server process per chaincode (``cc-<name>-<org>``), built
from ``chaincode/cmd/<name>`` and reached by its org's peer over mutual TLS.
The package the peer installs holds only ``connection.json`` (address + TLS
material) and ``metadata.json`` of type ``ccaas``; our external builder
(``network/builders/ccaas``) turns it into the connection the peer dials.

Key hygiene (issue 10, item 7a): ``connection.json`` carries the private key of
the peer's chaincode-client TLS pair, inline, because that is where the peer
reads it from (the release directory's ``chaincode/server/connection.json``).
So every copy is owner-only: the tar entries are 0600 (the peer untars with the
entry's mode), the package file in ``artifacts/`` is written 0600, and the
builder scripts run with ``umask 077`` and ``chmod 600`` what they write. The
definition is approved by every org and committed with the channel's default
MAJORITY endorsement policy (plus the per-org collections on ``keys``).

Every step checks first whether it is already done, so re-running is safe.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import re
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthreg.network import process
from synthreg.network.topology import Org

if TYPE_CHECKING:
    from synthreg.network.launcher import Launcher


TRANSIENT = (r"SERVICE_UNAVAILABLE|no Raft leader|connection refused|deadline exceeded|code = Unavailable"
             r"|timed out waiting for txid")
"""CLI failures worth another attempt: no ordering service or no leader yet, a connection
lost, or the own peer not yet having the block with the transaction (which the orderer
took: a retry is refused as "unchanged content" once it has it, and ``done`` sees it)"""

VERSION = "1.0"


PACKAGE_MODE = 0o600
"""Mode of every file in a chaincode package and of the package file itself:
``connection.json`` holds a private key."""


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A deterministic .tar.gz (fixed mtimes/owners) so package IDs are stable;
    entries are owner-only (:data:`PACKAGE_MODE`)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), PACKAGE_MODE, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode :data:`PACKAGE_MODE` (also when it existed
    with a wider mode, as packages written by older launchers did)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PACKAGE_MODE)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), PACKAGE_MODE)
        fh.write(data)


class Deployer:
    def __init__(self, launcher: Launcher) -> None:
        self.l = launcher
        self.cfg = launcher.cfg
        self.submit_timeout = 60.0
        """how long lifecycle transactions are retried while the ordering service has no
        leader (a registry approving before a majority of orderers joined waits longer)"""
        self.attempt_timeout = 60.0
        """how long one lifecycle CLI call may take before it is abandoned and retried via the
        next orderer (a healthy one takes seconds; the CLI's own wait for the commit event is
        30 s)"""

    # --- build ---------------------------------------------------------------
    def build(self, name: str) -> str:
        if self.cfg.chaincode_bin is not None:
            prebuilt = self.cfg.chaincode_bin / name
            if not prebuilt.is_file():
                raise RuntimeError(f"prebuilt chaincode server {prebuilt} not found")
            return str(prebuilt)
        out = self.cfg.home / "bin" / name
        src = self.cfg.chaincode_src
        if not (src / "cmd" / name).exists():
            raise RuntimeError(f"chaincode source {src / 'cmd' / name} not found")
        # go build is itself incremental; always run it so source edits are picked up
        from synthreg.network.launcher import run_cmd

        out.parent.mkdir(parents=True, exist_ok=True)
        run_cmd(["go", "build", "-trimpath", "-o", str(out), f"./cmd/{name}"], {"CGO_ENABLED": "0"}, cwd=src)
        return str(out)

    # --- package -------------------------------------------------------------
    def package(self, name: str, org: Org) -> tuple[str, bytes]:
        c = self.l.crypto(org)
        client = c.tls_pair("peer-ccclient")
        conn = {
            "address": org.chaincode_endpoint(name),
            "dial_timeout": "10s",
            "tls_required": True,
            "client_auth_required": True,
            "client_key": client.key_pem.decode(),
            "client_cert": client.cert_pem.decode(),
            "root_cert": c.tls_ca_cert.read_text(),
        }
        label = f"{name}_{VERSION}"
        code = _tar_gz({"connection.json": json.dumps(conn, indent=2).encode()})
        pkg = _tar_gz({"metadata.json": json.dumps({"type": "ccaas", "label": label}).encode(),
                       "code.tar.gz": code})
        return label, pkg

    # --- steps ---------------------------------------------------------------
    def _installed(self, org: Org, label: str) -> str | None:
        from synthreg.network.launcher import run_cmd

        out = run_cmd([self.l.bin("peer"), "lifecycle", "chaincode", "queryinstalled", "--output", "json"],
                      self.l.peer_admin_env(org)).stdout
        data = json.loads(out or "{}")
        for item in data.get("installed_chaincodes", []) or []:
            if item.get("label") == label:
                return str(item["package_id"])
        return None

    def install(self, name: str, org: Org) -> str:
        from synthreg.network.launcher import run_cmd

        label, pkg = self.package(name, org)
        path = self.cfg.artifacts_dir / f"{name}-{org.name}.tar.gz"
        write_private(path, pkg)
        pkg_id = run_cmd([self.l.bin("peer"), "lifecycle", "chaincode", "calculatepackageid", str(path)],
                         self.l.peer_admin_env(org)).stdout.strip()
        if self._installed(org, label) != pkg_id:
            run_cmd([self.l.bin("peer"), "lifecycle", "chaincode", "install", str(path)],
                    self.l.peer_admin_env(org))
            self.l.log(f"{name} installed on the peer of {org.msp_id} ({pkg_id[:24]}...)")
        return pkg_id

    def start_server(self, name: str, org: Org, binary: str, pkg_id: str) -> None:
        c = self.l.crypto(org)
        tls = c.root / "tls-extra" / f"ccserver-{name}"
        host, port = org.chaincode_endpoint(name).split(":")
        env = {
            "CHAINCODE_SERVER_ADDRESS": org.chaincode_endpoint(name),
            "CHAINCODE_ID": pkg_id,
            "CHAINCODE_TLS_KEY": str(tls / "server.key"),
            "CHAINCODE_TLS_CERT": str(tls / "server.crt"),
            "CHAINCODE_CLIENT_CA_CERT": str(c.tls_ca_cert),
        }
        spec = process.ProcessSpec(f"cc-{name}-{org.name}", [binary], env,
                                   process.Health(tcp=(host, int(port))), ports=(int(port),))
        proc_name = spec.name
        # a server started for an older package must be restarted
        id_file = self.cfg.run_dir / f"{proc_name}.ccid"
        if id_file.exists() and id_file.read_text() != pkg_id:
            process.stop(self.cfg.run_dir, proc_name)
        pid = process.start(spec, self.cfg.run_dir, self.cfg.logs_dir)
        id_file.write_text(pkg_id)
        self.l.log(f"chaincode server {proc_name} up (pid {pid}, {org.chaincode_endpoint(name)})")

    def _definition_flags(self, channel: str, name: str) -> list[str]:
        flags = ["--channelID", channel, "--name", name, "--version", VERSION,
                 "--sequence", str(self.l.definition_sequence(channel))]
        if channel == "keys":
            flags += ["--collections-config", str(self.cfg.config_dir / "collections_keys.json")]
        return flags

    def is_committed(self, org: Org, channel: str, name: str) -> bool:

        info = self.committed_info(org, channel, name)
        return info is not None and int(info.get("sequence", 0)) == self.l.definition_sequence(channel)

    def committed_info(self, org: Org, channel: str, name: str) -> dict[str, Any] | None:
        """The committed definition as ``org``'s peer has it (sequence, approvals), or None."""
        from synthreg.network.launcher import run_cmd

        out = run_cmd([self.l.bin("peer"), "lifecycle", "chaincode", "querycommitted", "--channelID", channel,
                       "--name", name, "--output", "json"], self.l.peer_admin_env(org), check=False)
        if out.returncode != 0:
            return None
        info = json.loads(out.stdout or "{}")
        return info if isinstance(info, dict) else None

    def _approved(self, org: Org, channel: str, name: str) -> bool:
        return self.approvals(org, channel, name).get(org.msp_id, False)

    def orderer_choices(self, org: Org) -> list[tuple[str, list[str]]]:
        """(endpoint, CLI flags) of the orderers a lifecycle transaction may go to: ``org``'s
        own first, then every other member's. Any consenter takes a broadcast and forwards it
        to the Raft leader, so a registry whose own orderer leaves it unanswered goes on
        through another."""
        from synthreg.network.launcher import orderer_cli_flags

        own = (org.orderer_endpoint, self.l.orderer_flags(org))
        others = [(m.org.orderer_endpoint, orderer_cli_flags(m.org.orderer_endpoint, m.tls_ca_cert))
                  for m in self.l.members() if m.org.msp_id != org.msp_id]
        return [own, *others]

    def _last_word(self, org: Org, node: str, channel: str) -> str:
        """The last line ``org``'s own ``node`` ("orderer" or "peer") logged about ``channel``
        (read from the log's last 256 kB), for the log line of an attempt left unanswered;
        '' when there is none."""
        lines = process.log_lines(self.cfg.logs_dir / f"{node}-{org.name}.log",
                                  lambda line: f"channel={channel}" in line, 1, max_bytes=256_000)
        return lines[-1][:300] if lines else ""

    def _submit_with_retry(self, argv: Callable[[list[str]], list[str]], org: Org, what: str,
                           channel: str, timeout: float | None = None,
                           done: Callable[[], bool] | None = None) -> None:
        """Send a lifecycle transaction (``argv(orderer_flags)``) until it lands or a deadline.

        Lifecycle transactions can race the Raft leader election right after start-up, a
        loaded machine can see the orderer close the CLI's connection (gRPC Unavailable,
        e.g. GOAWAY "too_many_pings"), and an orderer can leave the CLI waiting for its
        broadcast answer (the CLI sets no deadline there; a CI join hung 300 s on it, and
        another one four times 120 s on the same orderer). So: each attempt has its own
        deadline (:attr:`attempt_timeout`); an attempt that outlives it, or fails with such
        an error, is retried on the next orderer of :meth:`orderer_choices` (own first);
        an error from another member's orderer is retried too (it may not serve the channel
        yet). ``done`` tells whether an attempt whose answer was lost, or which failed,
        landed anyway (then it is not sent again)."""
        from synthreg.network.launcher import NetworkError, run_cmd

        deadline = time.monotonic() + (self.submit_timeout if timeout is None else timeout)
        choices = self.orderer_choices(org)
        attempt = 0
        while True:
            endpoint, flags = choices[attempt % len(choices)]
            own = attempt % len(choices) == 0
            attempt += 1
            try:
                out = run_cmd(argv(flags), self.l.peer_admin_env(org), check=False, timeout=self.attempt_timeout)
            except subprocess.TimeoutExpired:
                error, transient = f"no answer in {self.attempt_timeout:.0f} s", True
                for node in ("orderer", "peer") if own else ():
                    if view := self._last_word(org, node, channel):
                        error += f" (own {node}'s last word on '{channel}': {view})"
                gist = error
            else:
                if out.returncode == 0:
                    return
                gist, error = _gist(out.stderr), out.stderr.strip()[-3000:]
                if gist not in error:
                    error = f"{gist}\n[...]\n{error}"
                transient = not own or bool(re.search(TRANSIENT, out.stderr, re.I))
            if done is not None and done():
                return
            if not transient or time.monotonic() > deadline:
                raise NetworkError(f"{what} failed:\n{error}")
            nxt = choices[attempt % len(choices)][0]
            self.l.log(f"{what} via {endpoint}: {gist}; retrying via {nxt}")
            time.sleep(0.5)

    def deploy(self, channel: str, name: str) -> None:
        """Everything for one chaincode on one channel, as the one-home network does it:
        :meth:`prepare` for every org, then :meth:`commit` by the first."""
        self.prepare(channel, name)
        self.commit(channel, name, self.cfg.orgs[0])

    def prepare(self, channel: str, name: str) -> None:
        """Build, install, run the server and approve the definition for every local org."""
        binary = self.build(name)
        for org in self.cfg.orgs:
            pkg_id = self.install(name, org)
            self.start_server(name, org, binary, pkg_id)
            info = self.committed_info(org, channel, name)
            if self.is_committed(org, channel, name) and info and (info.get("approvals") or {}).get(org.msp_id):
                continue  # (a registry added later approves the committed definition too)
            if not self._approved(org, channel, name):
                self._submit_with_retry(
                    _around_orderer([self.l.bin("peer"), "lifecycle", "chaincode", "approveformyorg"],
                                    [*self._definition_flags(channel, name), "--package-id", pkg_id,
                                     "--waitForEvent"]),
                    org, f"approve {name} for {org.msp_id}", channel,
                    done=functools.partial(self._approved, org, channel, name))
                self.l.log(f"{org.msp_id} approved {name} on '{channel}'")

    def approvals(self, org: Org, channel: str, name: str) -> dict[str, bool]:
        """MSP ID -> approved, as ``org``'s peer sees the definition (checkcommitreadiness)."""
        from synthreg.network.launcher import run_cmd

        out = run_cmd([self.l.bin("peer"), "lifecycle", "chaincode", "checkcommitreadiness",
                       *self._definition_flags(channel, name), "--output", "json"],
                      self.l.peer_admin_env(org), check=False)
        if out.returncode != 0:
            return {}
        return {str(k): bool(v) for k, v in (json.loads(out.stdout).get("approvals") or {}).items()}

    def commit(self, channel: str, name: str, committer: Org) -> None:
        """Commit the definition as ``committer`` (endorsed by every member's peer; the
        channel's MAJORITY policy decides) and wait until every local peer has it."""
        if not self.is_committed(committer, channel, name):
            peers: list[str] = []
            for m in self.l.members():
                peers += ["--peerAddresses", m.org.peer_endpoint, "--tlsRootCertFiles", str(m.tls_ca_cert)]
            from synthreg.network.launcher import NetworkError

            try:
                self._submit_with_retry(
                    _around_orderer([self.l.bin("peer"), "lifecycle", "chaincode", "commit"],
                                    [*self._definition_flags(channel, name), *peers, "--waitForEvent"]),
                    committer, f"commit {name} on '{channel}'", channel,
                    done=lambda: self.is_committed(committer, channel, name))
            except NetworkError as exc:
                # Registries run `consortium commit` at the same time: another one's commit of
                # the same definition may have landed first ("new definition must be sequence
                # N+1"). That is success, once this peer sees it.
                try:
                    self.wait_committed(channel, name, timeout=15)
                except RuntimeError:
                    raise exc from None
                self.l.log(f"{name} on '{channel}' was committed by another registry meanwhile")
            else:
                self.l.log(f"{name} committed on '{channel}' (endorsement: MAJORITY)")
        self.wait_committed(channel, name)

    def wait_committed(self, channel: str, name: str, timeout: float = 30) -> None:
        """Every local peer must see the definition before clients use it."""
        deadline = time.monotonic() + timeout
        for org in self.cfg.orgs:
            while not self.is_committed(org, channel, name):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not committed on the peer of {org.msp_id}")
                time.sleep(0.2)


def _gist(error: str) -> str:
    """The line of a CLI failure worth logging: its last error line (``Error: ...``, or a log
    line at ERRO level; the CLI prints its usage, ~3 kB, after some errors), else its last
    line."""
    lines = [process.plain(line) for line in error.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line or " ERRO " in line]
    return (errors or lines or ["failed"])[-1]


def _around_orderer(before: list[str], after: list[str]) -> Callable[[list[str]], list[str]]:
    """A CLI command line with the orderer flags (one orderer's) between ``before`` and ``after``."""
    return lambda orderer: [*before, *orderer, *after]


__all__ = ["PACKAGE_MODE", "Deployer", "write_private"]

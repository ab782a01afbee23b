"""One registry in containers (docker-compose.yml), two on namespace hosts, one run.

Registry1 and Registry2 are hosts of their own (network namespaces on a bridge, every
step by the `synthreg` CLI inside the host, as in test_hosts.py). Registry3 runs the
repository's docker-compose.yml against a `podman system service` socket, with host
networking in the root namespace at the bridge's address, where the others reach it:
`docker-compose config`, `run --rm node registry init`, `up -d node`, its join and
commit by `exec` inside `node`, its apps by `--profile apps up -d apps`, its approval
by `exec` inside `apps`. A 2-round run proposed by Registry1 must be agreed with
Registry3 in every round; the auditor (root namespace) verifies it. Afterwards no
container, network or namespace of the test is left; the images stay (the CI cache).

Needs root, podman, docker-compose and the image (scripts/containers.sh, which
scripts/test.sh runs first).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from apps_support import CONFIG
from hosts_support import MSPS, HostConsortium, finish, registry_parts, require_root

from synthreg.network.netns import Hosts

REPO = Path(__file__).resolve().parents[2]
PROJECT = "synthreg-sc"
BASE_PORT = 17000  # Registry3 binds <bridge address>:17301.. and 127.0.0.1:17321-22 (chaincode servers)
IMAGE = os.environ.get("SYNTHREG_IMAGE", "localhost/synthreg:latest")


def _require_engine() -> None:
    """podman, docker-compose and the image, else skip (fail under ``make test``)."""
    missing = [t for t in ("podman", "docker-compose") if shutil.which(t) is None]
    if not missing and subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        missing.append(f"the image {IMAGE}")
    if missing:
        why = f"{', '.join(missing)} missing: run scripts/containers.sh"
        if os.environ.get("SYNTHREG_REQUIRE_NETWORK") == "1":
            pytest.fail(why)
        pytest.skip(why)


def _podman_lines(*args: str) -> set[str]:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=60, check=True)
    return set(out.stdout.split())


@dataclass
class ComposeRegistry:
    """Registry3: docker-compose.yml's containers, driven through a podman service socket."""

    base: Path
    address: str
    engine: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return self.base / "registry3"

    @property
    def exchange(self) -> Path:
        return self.base / "exchange"

    @property
    def data(self) -> Path:
        return self.base / "registry3-data.csv"

    @property
    def socket(self) -> Path:
        return self.base / "podman.sock"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "COMPOSE_HTTP_TIMEOUT": "300",
                "SYNTHREG_IMAGE": IMAGE, "SYNTHREG_ORG": MSPS[2], "SYNTHREG_HOME_DIR": str(self.home),
                "SYNTHREG_EXCHANGE_DIR": str(self.exchange), "SYNTHREG_DATA_CSV": str(self.data)}

    def argv(self, *args: str) -> list[str]:
        return ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "--project-directory", str(self.base),
                "-p", PROJECT, *args]

    def dc(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, env=self.env())
        if check and out.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} -> {out.returncode}\n"
                                 f"{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
        return out

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=self.env())

    def start_engine(self) -> None:
        """`podman system service` on a socket of this test; returns once it answers /_ping."""
        log = (self.base / "podman-service.log").open("wb")
        self.engine = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                                       stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self._pings():
            assert self.engine.poll() is None, f"podman system service exited (log: {log.name})"
            assert time.monotonic() < deadline, f"podman system service did not answer (log: {log.name})"
            time.sleep(0.2)

    def _pings(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
                return s.recv(64).split(b"\r\n", 1)[0].endswith(b" 200 OK")
        except OSError:
            return False

    def stop_engine(self) -> None:
        if self.engine is not None and self.engine.poll() is None:
            self.engine.terminate()
            try:
                self.engine.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.engine.kill()
                self.engine.wait()

    def reap_exec_monitors(self) -> list[int]:
        """SIGKILL the conmon monitors of this project's `exec` sessions: podman keeps each
        one for 300 s (`--exit-delay`) after its container is gone. Returns their PIDs."""
        reaped = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"conmon") and f"{PROJECT}_".encode() in b" ".join(argv):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), 9)
                    reaped.append(int(proc.name))
        return reaped

    def containers(self) -> set[str]:
        return _podman_lines("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                             "--format", "{{.Names}}")


@dataclass
class Mixed:
    hosts: HostConsortium
    r3: ComposeRegistry

    def home(self, i: int) -> Path:
        return self.r3.home if i == 3 else self.hosts.home(i)


@contextmanager
def mixed_consortium(base: Path) -> Iterator[Mixed]:
    """Registry1/2 on namespace hosts, Registry3 in containers: joined, committed, key
    ceremony done. Everything it started is stopped and removed on exit."""
    hosts = Hosts.free(2, prefix="sc", subnet="10.231.8.0/24")
    c = HostConsortium(hosts, base, base_port=BASE_PORT)
    r3 = ComposeRegistry(base, hosts.address(0))
    hosts.up()
    try:
        r3.exchange.mkdir()
        r3.home.mkdir()
        r3.data.touch()  # the apps' bind mount; filled before `up apps`
        r3.start_engine()
        t0 = time.monotonic()
        r3.dc("config", "-q")
        r3.dc("run", "--rm", "node", "registry", "init", "--org", MSPS[2], "--host", r3.address,
              "--base-port", str(BASE_PORT))
        r3.dc("up", "-d", "node")
        for i in (1, 2):
            c.init_node(i)
        print(f"\nthree registries initialised, nodes up: {time.monotonic() - t0:.0f}s")
        bundle = r3.exchange / "bundle.json"
        c.cli(1, "consortium", "create", "--out", str(bundle),
              *[a for i in (1, 2, 3) for a in ("--org-def", str((r3.home if i == 3 else c.home(i)) / "org-def.json"))])
        t0 = time.monotonic()
        finish({"join of Registry1": c.join(1, bundle), "join of Registry2": c.join(2, bundle),
                "join of Registry3 (exec node)": r3.spawn("exec", "-T", "node", "synthreg", "registry", "join",
                                                          "--consortium", "/srv/exchange/bundle.json")},
               logs={"join of Registry1": c.node_logs(1), "join of Registry2": c.node_logs(2)})
        print(f"three joins: {time.monotonic() - t0:.0f}s")
        for i in (1, 2):
            c.cli(i, "consortium", "commit", "--home", str(c.home(i)))
        r3.dc("exec", "-T", "node", "synthreg", "consortium", "commit")
        c.cli(1, "keys", "ceremony", "-t", "2", "--org", MSPS[0], "--home", str(c.home(1)))
        yield Mixed(c, r3)
    finally:
        r3.dc("--profile", "apps", "down", "--remove-orphans", "-t", "30", check=False, timeout=300)
        r3.stop_engine()
        r3.reap_exec_monitors()
        c.stop()
        hosts.down()


def test_registry3_in_containers_runs_with_two_namespace_hosts(tmp_path_factory: pytest.TempPathFactory) -> None:
    require_root()
    _require_engine()
    base = tmp_path_factory.mktemp("compose")
    networks_before = _podman_lines("network", "ls", "--format", "{{.Name}}")
    t_start = time.monotonic()
    run = f"compose-{uuid.uuid4().hex[:8]}"
    with mixed_consortium(base) as m:
        c, r3 = m.hosts, m.r3
        node = r3.dc("ps", "-q", "node").stdout.split()
        assert len(node) == 1, "the node container is not up"

        parts, schema = registry_parts()
        for i in (1, 2):
            c.write_local(i, parts[i - 1], schema)
            c.apps_up(i)
        parts[2].to_csv(r3.data, index=False)
        (r3.exchange / "schema.yaml").write_text(schema)
        r3.dc("--profile", "apps", "up", "-d", "apps")

        config = c.local(1) / "run.yaml"
        config.write_text(yaml.safe_dump({"run": run, "schema": "schema.yaml", "training": CONFIG,
                                          "audit_rounds": [1]}))
        c.cli(1, "run", "propose", "--config", str(config), "--org", MSPS[0], "--home", str(c.home(1)))
        for i in (1, 2):
            c.approve(i, run)
        r3.dc("--profile", "apps", "exec", "-T", "apps", "synthreg", "run", "approve", run, "--org", MSPS[2],
              "--data", "/srv/data/registry.csv", "--schema", "/srv/exchange/schema.yaml")
        t0 = time.monotonic()
        c.cli(1, "run", "watch", run, "--org", MSPS[0], "--home", str(c.home(1)), timeout=900)
        print(f"run of {CONFIG['rounds']} rounds: {time.monotonic() - t0:.0f}s")
        status = json.loads(c.cli(2, "run", "status", run, "--org", MSPS[1], "--home", str(c.home(2)),
                                  "--json").stdout)
        assert status["agreed_rounds"] == CONFIG["rounds"], status
        assert MSPS[2] in status["participants"], status
        assert status["missed_rounds"] == {m: [] for m in MSPS[:3]}, status  # Registry3 survived every round

        # The auditor (root namespace): Registry2 and containerised Registry3 release their shares.
        key = r3.exchange / "auditor"
        c.cli(0, "audit", "keygen", "--out", str(key))
        c.cli(2, "keys", "release", "--org", MSPS[1], "--auditor", str(key / "auditor_x25519_pk.pem"),
              "--home", str(c.home(2)))
        r3.dc("exec", "-T", "node", "synthreg", "keys", "release", "--org", MSPS[2],
              "--auditor", "/srv/exchange/auditor/auditor_x25519_pk.pem")
        unsealed = base / "unsealed"
        c.cli(0, "audit", "unseal", "--key", str(key), "--out", str(unsealed), "--home", str(c.home(1)))
        workspaces = [a for i in (1, 2, 3) for a in
                      ("--workspace", f"{MSPS[i - 1]}={m.home(i) / 'registries' / MSPS[i - 1] / 'workspace'}")]
        report = json.loads(c.cli(0, "audit", "verify", "--run", run, "--unsealed", str(unsealed), *workspaces,
                                  "--home", str(c.home(1)), "--json").stdout)
        assert report["ok"] and report["rounds_checked"] == CONFIG["rounds"], report

    print(f"compose test, set-up to teardown: {time.monotonic() - t_start:.0f}s")
    assert r3.containers() == set(), f"containers left: {r3.containers()}"
    assert r3.reap_exec_monitors() == [], "exec-session monitors (conmon) left"
    assert _podman_lines("network", "ls", "--format", "{{.Name}}") <= networks_before
    assert not {"sc-h1", "sc-h2"} & set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                       text=True).stdout.split())
    assert subprocess.run(["ip", "link", "show", "scbr0"], capture_output=True).returncode != 0

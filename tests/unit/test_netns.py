"""Hosts.free steps over a host set that is already up or was left by a killed run (the
clean-clone CI once met a stale ``srbr0`` and every host test errored at set-up)."""

from __future__ import annotations

import subprocess

import pytest

from synthreg.network import netns
from synthreg.network.netns import Hosts, HostsError


def _fake_ip(netns_list: str, links: set[str], addrs: list[str]):
    def fake(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[:2] == ("netns", "list"):
            out, rc = netns_list, 0
        elif args[:2] == ("link", "show"):
            out, rc = "", 0 if args[2] in links else 1
        elif args[:3] == ("-o", "-4", "addr"):
            out, rc = "\n".join(f"{i}: x    inet {a} brd + scope global x" for i, a in enumerate(addrs)), 0
        else:
            raise AssertionError(f"unexpected ip {args}")
        return subprocess.CompletedProcess(["ip", *args], rc, out, "")
    return fake


def test_free_takes_the_default_when_nothing_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "_ip", _fake_ip("", set(), ["127.0.0.1/8", "10.0.2.15/24"]))
    hosts = Hosts.free(4)
    assert (hosts.prefix, hosts.subnet, hosts.bridge) == ("sr", "10.231.7.0/24", "srbr0")


def test_free_steps_over_a_stale_bridge_a_namespace_or_a_used_subnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "_ip", _fake_ip("", {"srbr0"}, ["10.231.7.1/24"]))
    assert Hosts.free(4).subnet == "10.231.23.0/24"
    monkeypatch.setattr(netns, "_ip", _fake_ip("sr1-h3 (id: 4)\n", {"srbr0"}, []))
    hosts = Hosts.free(4)
    assert (hosts.prefix, hosts.subnet) == ("sr2", "10.231.39.0/24")
    monkeypatch.setattr(netns, "_ip", _fake_ip("", set(), ["10.231.12.200/20"]))  # a /20 over 10.231.7.0/24
    assert Hosts.free(2).prefix == "sr1"


def test_up_refuses_names_in_use_and_free_gives_up_after_its_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "_ip", _fake_ip("sr-h1\n", set(), []))
    with pytest.raises(HostsError, match="sr-h1 already exist"):
        Hosts(2).up()
    monkeypatch.setattr(netns, "_ip", _fake_ip("", set(), ["10.0.0.1/8"]))
    with pytest.raises(HostsError, match="no free host set among 3"):
        Hosts.free(2, tries=3)

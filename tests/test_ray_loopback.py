"""Ray in tests binds to loopback only: nothing it starts is reachable from the network."""

from __future__ import annotations

import ipaddress

import psutil
import pytest

pytestmark = pytest.mark.ray


def _ray_pids() -> set[int]:
    pids = set()
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            text = " ".join(p.info["cmdline"] or []) + " " + (p.info["name"] or "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(
            k in text for k in ("raylet", "gcs_server", "ray::", "ray/_private", "ray/dashboard")
        ):
            pids.add(p.info["pid"])
    return pids


def test_every_ray_listener_is_on_loopback(ray_cluster):
    @ray_cluster.remote
    def ping() -> int:
        return 1

    assert ray_cluster.get(ping.remote()) == 1
    pids = _ray_pids() | {psutil.Process().pid}
    listeners = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert listeners, "found no Ray listeners at all: the check itself is broken"
    for c in listeners:
        ip = ipaddress.ip_address(c.laddr.ip)
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        assert ip.is_loopback, f"pid {c.pid} listens on {c.laddr.ip}:{c.laddr.port}"

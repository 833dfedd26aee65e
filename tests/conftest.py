"""Shared fixtures. One real local Ray cluster per test session, bound to 127.0.0.1."""

from __future__ import annotations

import os

import pytest

# Must be set before `import ray` anywhere: keeps a local cluster on loopback (see ray_runtime).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def start_session_ray() -> None:
    """Start the session's local Ray cluster (also used to restore it after multi-node tests)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # never join a cluster that happens to run on this machine
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            object_store_memory=200 * 1024 * 1024,
            log_to_driver=False,
            configure_logging=False,
        )


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster (2 CPUs, loopback only), shared by the tests that need it."""
    import ray

    start_session_ray()
    yield ray
    ray.shutdown()

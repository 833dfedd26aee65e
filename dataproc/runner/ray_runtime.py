"""Starting or joining Ray. The only module that knows how Ray is brought up.

A local cluster binds every server to 127.0.0.1: Ray's dashboard and job API run arbitrary
code for whoever reaches them, so nothing is exposed beyond this machine unless the user joins
a cluster they configured themselves. Ray (2.5x/2.6x) rewrites ``127.0.0.1`` to the machine's
outward address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which makes it keep loopback
for a single-machine cluster; the variable is read when ``ray`` is imported, so it must be set
before the first import (``ensure_loopback_env``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dataproc.config import ExecutionConfig

log = logging.getLogger("dataproc")

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def ensure_loopback_env() -> None:
    """Make a local Ray cluster bind to 127.0.0.1 (call before ``import ray``)."""
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        log.debug("ray was imported before ensure_loopback_env(); local cluster may bind widely")
    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)


def resolve_address(exec_config: ExecutionConfig) -> str | None:
    return exec_config.address or os.environ.get("RAY_ADDRESS") or None


@contextmanager
def ray_session(exec_config: ExecutionConfig) -> Iterator[Any]:
    """Join the configured cluster, or start a loopback-only local one; shut down what we start."""
    address = resolve_address(exec_config)
    if address is None:
        ensure_loopback_env()
    import ray

    if ray.is_initialized():
        yield ray  # someone (a test, a notebook) already connected: use and leave it
        return
    kwargs: dict[str, Any] = {"log_to_driver": True, "configure_logging": False}
    env_vars = {k: v for k, v in os.environ.items() if k.startswith("DATAPROC_")}
    if env_vars:
        kwargs["runtime_env"] = {"env_vars": env_vars}
    if address is None:
        # Token auth stays on; on a loopback-only cluster its start-up notice is just noise.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR
        )
        kwargs.update(
            # "local" always starts a fresh cluster: never join one that merely happens to run
            # on this machine (another user's, a test's) without being asked to.
            address="local",
            num_cpus=exec_config.workers or os.cpu_count() or 1,
            include_dashboard=exec_config.include_dashboard,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
        )
        if exec_config.object_store_memory:
            kwargs["object_store_memory"] = exec_config.object_store_memory
    else:
        kwargs["address"] = address
    ray.init(**kwargs)
    try:
        from dataproc.runner.ray_auth import log_cluster_protection

        log_cluster_protection(ray, address, log)  # loopback, token auth, or a warning
        yield ray
    finally:
        ray.shutdown()

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
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dataproc.config import ExecutionConfig
from dataproc.errors import ConfigError
from dataproc.runner.reaper import ClusterReaper

log = logging.getLogger("dataproc")

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def ensure_loopback_env() -> None:
    """Make a local Ray cluster bind to 127.0.0.1 (call before ``import ray``)."""
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        log.debug("ray was imported before ensure_loopback_env(); local cluster may bind widely")
    for k, v in LOOPBACK_ENV.items():
        os.environ.setdefault(k, v)


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables Ray's ``runtime_env`` may carry: dataproc's own, by name, no secrets.

    Ray writes a runtime env in full to ``runtime_env_agent.log`` (world-readable under
    ``/tmp/ray``), so only names dataproc reads are forwarded, and a value that looks like a
    credential is never forwarded (a warning names the variable, never its value).
    """
    env = os.environ if environ is None else environ
    forwarded = {}
    for name in sorted(forwardable_env_names() & set(env)):
        value = env[name]
        if looks_like_secret(value):
            log.warning("not forwarding %s to Ray: its value looks like a credential", name)
            continue
        forwarded[name] = value
    return forwarded


def forwardable_env_names() -> set[str]:
    """Every environment variable dataproc reads (remote-read policy, crawl base URL)."""
    from dataproc.io.crawl import BASE_URL_ENV
    from dataproc.io.remote import ENV_PREFIX, RemoteReadConfig

    return {ENV_PREFIX + name.upper() for name in RemoteReadConfig.model_fields} | {BASE_URL_ENV}


_SECRET_PATTERNS = re.compile(
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY"
    r"|\b(?:gh[pousr]_|github_pat_|glpat-|xox[abprs]-|sk-|hf_)[A-Za-z0-9_-]{16,}"
    r"|^[a-z][a-z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@"  # URL with user:password@
    r"|[?&](?:[A-Za-z_-]*(?:token|signature|secret|key|password)[A-Za-z_-]*)=",
    re.IGNORECASE,
)
_OPAQUE = re.compile(r"[A-Za-z0-9+/=_-]{24,}")


def looks_like_secret(value: str) -> bool:
    """True for a known credential shape, or a long opaque string mixing letters and digits."""
    if _SECRET_PATTERNS.search(value):
        return True
    return any(
        any(c.isdigit() for c in m) and any(c.isalpha() for c in m) for m in _OPAQUE.findall(value)
    )


def check_dashboard_installed() -> None:
    """Fail with one line (not Ray's traceback) when the dashboard's packages are missing."""
    try:
        from ray._private.utils import get_dashboard_dependency_error

        error = get_dashboard_dependency_error()
    except (ImportError, AttributeError):  # another Ray version: let Ray decide
        return
    if error:
        raise ConfigError(
            f"execution.include_dashboard=true needs Ray's dashboard packages ({error}); "
            "pip install 'ray[default]', or leave execution.include_dashboard false"
        )


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
    env_vars = forwarded_env()
    if env_vars:
        kwargs["runtime_env"] = {"env_vars": env_vars}
    if address is None:
        if exec_config.include_dashboard:
            check_dashboard_installed()
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
    reaper = ClusterReaper() if address is None else None
    if reaper is not None:
        reaper.start()  # a SIGKILLed driver's local cluster is stopped too (runner/reaper.py)
    try:
        ray.init(**kwargs)
        try:
            from dataproc.runner.ray_auth import log_cluster_protection

            log_cluster_protection(ray, address, log)  # loopback, token auth, or a warning
            yield ray
        finally:
            ray.shutdown()
    finally:
        if reaper is not None:
            reaper.stop()

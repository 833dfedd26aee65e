"""Checks on the driver, before Ray starts, that every optional component a run needs is here.

Without them a missing package is found only inside the Ray workers: each task fails four
times with a raylet traceback and the run ends with advice ("rerun to retry") that can never
work. ``check_run(config)`` fails instead at once, in ``run`` and ``run --dry-run``, with one
line naming the package and the pip extra that installs it. ``missing_package_message`` turns
an ``ImportError`` raised anywhere (``inspect s3://...``) into the same kind of line.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from dataproc.errors import DataprocError

# URL scheme -> (module fsspec needs, pip requirement that installs it).
FILESYSTEM_PACKAGES: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "dataproc[s3]"),
    "s3a": ("s3fs", "dataproc[s3]"),
    "gs": ("gcsfs", "dataproc[gcs]"),
    "gcs": ("gcsfs", "dataproc[gcs]"),
    "az": ("adlfs", "adlfs"),
    "abfs": ("adlfs", "adlfs"),
    "hf": ("huggingface_hub", "huggingface_hub"),
}
# Top-level module of an optional dependency -> pip requirement that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "s3fs": "dataproc[s3]",
    "boto3": "dataproc[s3]",
    "botocore": "dataproc[s3]",
    "gcsfs": "dataproc[gcs]",
    "resiliparse": "dataproc[resiliparse]",
    "torch": "dataproc[torch]",
    "adlfs": "adlfs",
    "huggingface_hub": "huggingface_hub",
}


class MissingPackageError(DataprocError):
    """An optional package this command needs is not installed (the message says what to pip)."""


def pip_hint(requirement: str) -> str:
    """``pip install 'dataproc[gcs]'``: quoted, so shells that glob ``[...]`` leave it alone."""
    return f"pip install '{requirement}'"


def _missing_module(e: ImportError) -> str | None:
    """The top-level module an ImportError is about (fsspec's own messages included)."""
    if e.name:
        return e.name.split(".", 1)[0]
    text = str(e)
    return next((m for m in EXTRA_OF_MODULE if m in text), None)


def missing_package_message(e: ImportError) -> str:
    """One line for an ImportError: the missing module and the pip command that adds it."""
    module = _missing_module(e)
    if module is None:
        return f"a required package is missing ({e}); reinstall dataproc: pip install -e ."
    req = EXTRA_OF_MODULE.get(module, module)
    return f"the {module} package is not installed; {pip_hint(req)}"


def check_filesystem(url: str) -> None:
    """Raise ``MissingPackageError`` if the package that reads ``url``'s scheme is missing."""
    if "://" not in url:
        return
    scheme = url.split("://", 1)[0].lower()
    package = FILESYSTEM_PACKAGES.get(scheme)
    if package is None:
        return
    module, req = package
    if importlib.util.find_spec(module) is None:
        raise MissingPackageError(f"{url}: {scheme}:// paths need {module}; {pip_hint(req)}")


def check_run(config: Any) -> None:
    """Everything a run loads in its workers, loaded (or looked up) once here on the driver.

    File-system packages for the inputs and the output, the user's own steps, the extractor,
    the language-ID model and the tokenizer. Raises a ``DataprocError`` with one line naming
    the fix.
    """
    for url in [*config.inputs, config.output or ""]:
        check_filesystem(url)
    from dataproc.steps.build import check_user_steps

    check_user_steps(config)
    from dataproc.stages.extract import check_extractor_available

    try:
        check_extractor_available(config.extract)
    except DataprocError:
        raise MissingPackageError(
            f"extract.extractor={config.extract.extractor} needs the {config.extract.extractor} "
            f"package; {pip_hint('dataproc[' + config.extract.extractor + ']')} "
            "(or set extract.extractor=trafilatura)"
        ) from None
    from dataproc.stages.langid import load_model

    load_model(config.langid.model_path)  # raises ConfigError naming the model path
    from dataproc.stages.tokenize import tokenizer_info

    tokenizer_info(config.tokenizer)  # raises TokenizerError naming the tokenizer


__all__ = [
    "MissingPackageError",
    "check_filesystem",
    "check_run",
    "missing_package_message",
    "pip_hint",
]

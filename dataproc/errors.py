"""Exceptions raised by dataproc. Every error a user can cause says what to do about it."""

from __future__ import annotations


class DataprocError(Exception):
    """Base class for all errors dataproc raises on purpose."""


class ConfigError(DataprocError):
    """A configuration file, key or value is invalid. The message names key, value and fix."""


class InputError(DataprocError):
    """An input could not be found or opened (bad path, glob matching nothing, ...)."""


class OutputError(DataprocError):
    """The output location cannot be used (holds another run, not writable, ...)."""


class TokenizerError(DataprocError):
    """A tokenizer could not be loaded or failed its integrity check."""


class VerifyError(DataprocError):
    """An output folder failed verification."""


class DedupError(DataprocError):
    """Dedup work files are inconsistent (wrong shape, mixed configs) or misused."""

    @classmethod
    def unreadable(cls, path: str, error: BaseException) -> DedupError:
        """A dedup work file that cannot be read: the error names the file and the fix."""
        return cls(
            f"{path}: unreadable dedup work file ({type(error).__name__}: {error}); it is "
            "corrupt, truncated or was removed. Rerun with --overwrite, or delete it together "
            "with the _work/done/ marker of the input that wrote it and rerun"
        )


class StageError(DataprocError):
    """A stage broke the stage contract (``dataproc.stages.base``), e.g. a drop reason that is
    not one of its ``REASONS``: a bug in that stage, named in the message."""


class ExtractionError(DataprocError):
    """Text extraction cannot run (missing optional extractor, sandbox child failed to start)."""

"""Base class for typed configuration sections (kept apart so stage modules can import it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, and it is frozen once built.

    A run's config is shared by the driver and every task, and its fingerprint keys resume:
    a change after validation would make the two disagree silently. Derive a changed copy
    with ``model_copy(update=...)`` (or ``replace``) instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

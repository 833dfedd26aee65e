"""The phases of a run, as one enum: the tag on progress lines, failures and the manifest.

A failure's phase decides what may still run: a failed input of phase 1 only drops that input,
but any failure of phase 2 (dedup) stops phase 3, because tokenizing without the complete set
of removals would ship duplicates in an output that looks finished. So "is this phase 2?" must
be one property of the enum, never a comparison with one spelling of a tag.
"""

from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    """One kind of Ray task of the pipeline. The value is the tag written in logs and JSON.

    Every phase-2 member's value is ``dedup`` or starts with ``dedup-``: ``number`` relies on
    it, so a new kind of dedup task is a phase-2 failure without any other change. ``DEDUP``
    is phase 2 as a whole (its one marker, its reuse count); its steps are the others.
    """

    FILTER = "filter"
    DEDUP = "dedup"  # the whole of phase 2 (one marker); the steps below are its tasks
    DEDUP_COMPACT = "dedup-compact"  # band files of input batches merged (many inputs only)
    DEDUP_BUCKETS = "dedup-buckets"  # key ranges of the band files -> verified edges
    DEDUP_COMPONENTS = "dedup-components"  # star rounds; steps "dedup-components-{r}L|S"
    DEDUP_REMOVED = "dedup-removed"  # per node range: the removal file of each input
    DEDUP_RESULT = "dedup-result"  # removal files hashed into the dedup result
    TOKENIZE = "tokenize"

    def __str__(self) -> str:
        return self.value  # tags read "dedup-buckets", never "Phase.DEDUP_BUCKETS"

    def __format__(self, spec: str) -> str:
        return self.value.__format__(spec)

    @classmethod
    def of(cls, step: str) -> Phase:
        """The phase of a step tag: the member whose value is the longest prefix of ``step``
        (``"dedup-components-3S"`` is a DEDUP_COMPONENTS step). ValueError if none is."""
        # DEDUP is phase 2 as a whole, never a task's kind: no step is one of it by prefix
        # (an unknown dedup step must still be added to the enum).
        found = [
            p
            for p in cls
            if step == p.value or (p is not cls.DEDUP and step.startswith(p.value + "-"))
        ]
        if not found:
            raise ValueError(f"{step!r} is no step of any Phase; add its kind to Phase")
        return max(found, key=lambda p: len(p.value))

    @property
    def number(self) -> int:
        """1 (per-file filtering), 2 (run-wide dedup) or 3 (tokenize and write)."""
        if self.value == "dedup" or self.value.startswith("dedup-"):
            return 2
        return 1 if self is Phase.FILTER else 3

    @property
    def is_dedup(self) -> bool:
        """True for every kind of phase-2 task."""
        return self.number == 2


def is_dedup_failure(failure: dict[str, object]) -> bool:
    """Whether a failure record (``{"phase": ..., "unit": ..., "error": ...}``) is phase 2's."""
    try:
        return Phase.of(str(failure.get("phase"))).is_dedup
    except ValueError:
        return str(failure.get("phase", "")).startswith("dedup")

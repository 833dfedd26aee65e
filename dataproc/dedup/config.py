"""Dedup configuration: MinHash signature shape, LSH banding and the phase-2 bucket count."""

from __future__ import annotations

from pydantic import Field, model_validator

from dataproc.configbase import StrictModel

# Band ids are stored as uint8 and the exact-text key uses band id ``bands``, so at most 255
# LSH bands leave room for it.
MAX_BANDS = 255


class DedupConfig(StrictModel):
    """Run-wide MinHash near-dedup (FineWeb defaults: 5-gram words, 14 bands x 8 rows)."""

    enabled: bool = Field(True, description="Run near-dedup across the whole run.")
    num_perm: int = Field(
        112,
        ge=1,
        le=MAX_BANDS * 256,
        description="MinHash permutations per document; must equal `bands * rows`.",
    )
    bands: int = Field(
        14,
        ge=1,
        le=MAX_BANDS,
        description="LSH bands. Two documents become duplicate candidates when all `rows` "
        "values of at least one band agree (more bands: higher recall, lower precision).",
    )
    rows: int = Field(
        8,
        ge=1,
        description="MinHash values per band. With 14x8 a pair with Jaccard 0.8 is caught "
        "~92% of the time, Jaccard 0.5 ~5%, Jaccard 0.3 ~0.1%.",
    )
    ngram: int = Field(
        5,
        ge=1,
        description="Words per shingle (word n-grams of the normalized text); "
        "texts shorter than this give one shingle of all their words.",
    )
    seed: int = Field(
        1,
        ge=0,
        lt=2**32,
        description="Seed of the MinHash permutations (datasketch `MinHash(seed=...)`). "
        "Changing it changes every signature.",
    )
    exact: bool = Field(
        True,
        description="Also remove documents whose normalized text is identical "
        "(64-bit hash of it), reported as `exact_duplicate`.",
    )
    min_similarity: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Verification of LSH candidates where phase 2 finds them: two documents "
        "sharing a band are linked only if at least this share of their 8-bit MinHash "
        "sketches (stored with the band keys, num_perm bytes per band row) agree, i.e. "
        "estimated Jaccard >= this. Stops unrelated pages that collide in one band from "
        "being linked. Each connected component of linked documents keeps its smallest "
        "doc_index. 0 turns it off: every group of LSH candidates is linked.",
    )
    num_buckets: int = Field(
        16,
        ge=1,
        le=1_000_000,
        description="Minimum number of phase-2 bucket tasks (key ranges of the band files). "
        "More are used when needed to keep each under `task_memory`; the result does not "
        "depend on the number.",
    )
    task_memory: int = Field(
        1 << 30,
        ge=64 << 20,
        description="Memory budget in bytes of every phase-2 task (bucket, component and "
        "removal tasks): their number is derived from the band rows and edges so that each "
        "stays under it whatever the corpus size (Ray is also told, as the tasks' `memory`). "
        "Groups of any size (one band key shared by millions of documents, a component's "
        "centre with millions of members) are streamed, not held (docs/cluster.md).",
    )
    compact_inputs: int = Field(
        64,
        ge=0,
        description="With more inputs than this, phase 2 first merges the band files of "
        "every this many consecutive inputs into one key-sorted file, so that each bucket "
        "task opens inputs/compact_inputs files instead of one per input (at 90,000 inputs "
        "and ~4,000 bucket tasks: 5.6 M reads instead of 360 M). Costs one more pass over "
        "the band files; never changes the result. 0 turns it off.",
    )
    against: list[str] = Field(
        default_factory=list,
        description="Earlier dataproc outputs (`--dedup-against`): this run's documents that "
        "duplicate documents those outputs kept are removed. Their dedup settings must equal "
        "this run's and their `_work/` must still exist (band keys are read in place).",
    )

    @model_validator(mode="after")
    def _check_banding(self) -> DedupConfig:
        if self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"dedup.bands * dedup.rows must equal dedup.num_perm, got "
                f"{self.bands} * {self.rows} = {self.bands * self.rows} != {self.num_perm}; "
                f"set num_perm to {self.bands * self.rows} or change bands/rows"
            )
        return self

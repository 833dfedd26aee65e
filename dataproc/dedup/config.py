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
        description="Verification of LSH candidates: a document is removed only if its "
        "estimated Jaccard similarity (share of equal MinHash values) with the document kept "
        "in its place is at least this. Stops chains of candidates (A~B~C) from removing "
        "unrelated pages, at the cost of 4 x num_perm bytes per document on disk under "
        "_work/sigs. 0 turns it off: every group of LSH candidates becomes one cluster.",
    )
    num_buckets: int = Field(
        16,
        ge=1,
        le=9999,
        description="Phase-2 buckets of band keys (one task each). A bucket task holds "
        "~45 bytes x (bands + 1) x documents / num_buckets in memory: raise this for big runs "
        "(e.g. 256 for 1 B documents).",
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

"""MinHash signatures, band keys and exact keys (dataproc.dedup.minhash, dedup config)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from datasketch import MinHash
from pydantic import ValidationError

from dataproc.config import build_config
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.minhash import MinHasher, normalize_for_dedup, word_shingles
from dataproc.errors import ConfigError, DedupError

FOX = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat."

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def _random_words(rng: np.random.Generator, n: int) -> list[str]:
    lengths = rng.integers(2, 10, size=n)
    return ["".join(rng.choice(_LETTERS, size=k)) for k in lengths]


@pytest.fixture(scope="module")
def hasher() -> MinHasher:
    return MinHasher(DedupConfig())


# ---------------------------------------------------------------- normalization / shingles


def test_normalize_folds_width_case_punctuation_digits_and_space() -> None:
    assert normalize_for_dedup("Ｈｅｌｌｏ,World!!  It costs $12.99 —\tok 😀 ﬁne\n") == (
        "hello world it costs 0 0 ok fine"
    )
    assert normalize_for_dedup("") == ""
    assert normalize_for_dedup(" ...!!! ") == ""
    # Diacritics are kept (stripping marks would damage Indic scripts).
    assert normalize_for_dedup("Café हिन्दी") == "café हिन्दी"


def test_normalize_is_linear_on_adversarial_input() -> None:
    nasty = ["1" * 200_000, "1." * 100_000, " " * 200_000, "a1" * 100_000, "!" * 200_000]
    start = time.perf_counter()
    for s in nasty:
        normalize_for_dedup(s)
    assert time.perf_counter() - start < 2.0


def test_word_shingles() -> None:
    assert word_shingles("A b, c d e f", 5) == [b"a b c d e", b"b c d e f"]
    # Fewer words than n: one shingle of all of them.
    assert word_shingles("Hello   World", 5) == [b"hello world"]
    assert word_shingles("", 5) == []
    assert word_shingles("?! -- ...", 5) == []
    assert word_shingles("one two three", 1) == [b"one", b"two", b"three"]


# ---------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    "text",
    [
        FOX,
        "short text",
        "",
        "Ünïcödé ＦＵＬＬ ｗｉｄｔｈ 東京 text, with punctuation!!! and 42 numbers",
        # > 4096 shingles: exercises the chunked update_batch.
        " ".join(_random_words(np.random.default_rng(3), 6000)),
    ],
)
@pytest.mark.parametrize("num_perm,seed", [(112, 1), (64, 7)])
def test_signature_equals_datasketch(text: str, num_perm: int, seed: int) -> None:
    cfg = DedupConfig(num_perm=num_perm, bands=num_perm // 8, rows=8, seed=seed)
    hasher = MinHasher(cfg)
    expected = MinHash(num_perm=num_perm, seed=seed)
    expected.update_batch(word_shingles(text, cfg.ngram))
    sig = hasher.signature(text)
    assert sig.dtype == np.uint64
    assert sig.shape == (num_perm,)
    np.testing.assert_array_equal(sig, expected.hashvalues.astype(np.uint64))


def test_signature_literal_regression(hasher: MinHasher) -> None:
    sig = hasher.signature(FOX)
    assert [int(x) for x in sig[:8]] == [
        315004805,
        107305306,
        229745097,
        57559245,
        420481507,
        462961,
        680615882,
        172572087,
    ]


def test_band_keys_stable_literal(hasher: MinHasher) -> None:
    """Keys must never change between releases (they name files and join runs): pasted once."""
    keys = hasher.band_keys(hasher.signature(FOX))
    assert keys.dtype == np.uint64
    assert [int(k) for k in keys] == [
        14351288750669801959,
        13390853199342382929,
        2369714749260921576,
        12443125771572528130,
        8856154592550046565,
        6439964265680188326,
        3182614052565719108,
        12339669126249193415,
        2240072833287721139,
        242715814955184806,
        7087756659944487377,
        11780411107843827011,
        9952381129151929430,
        5357757557293795303,
    ]
    assert hasher.exact_key(FOX) == 1730729660285295969


def test_band_keys_differ_per_band_for_equal_values(hasher: MinHasher) -> None:
    keys = hasher.band_keys(np.zeros(112, dtype=np.uint64))
    assert len(set(keys.tolist())) == 14


def test_band_keys_rejects_wrong_shape(hasher: MinHasher) -> None:
    with pytest.raises(DedupError, match=r"expected \(112,\)"):
        hasher.band_keys(np.zeros(100, dtype=np.uint64))


def test_exact_key_uses_normalized_text(hasher: MinHasher) -> None:
    assert hasher.exact_key("Hello, World!") == hasher.exact_key("hello   world")
    assert hasher.exact_key("Hello, World!") != hasher.exact_key("hello word")
    # Interleaving calls with other texts must not reuse a stale normalization.
    a, b = "first text here", "second text here"
    hasher.signature(a)
    assert hasher.exact_key(b) == MinHasher(DedupConfig()).exact_key(b)


def test_near_duplicates_share_a_band_unrelated_do_not(hasher: MinHasher) -> None:
    rng = np.random.default_rng(11)
    shared = 0
    for _ in range(20):
        words = _random_words(rng, 400)
        edited = list(words)
        for pos in rng.choice(len(words), size=3, replace=False):
            edited[pos] = "changed"
        k1 = hasher.band_keys(hasher.signature(" ".join(words)))
        k2 = hasher.band_keys(hasher.signature(" ".join(edited)))
        shared += bool((k1 == k2).any())
        other = hasher.band_keys(hasher.signature(" ".join(_random_words(rng, 400))))
        assert not (k1 == other).any()
    assert shared == 20


# ---------------------------------------------------------------- LSH recall / precision


def _pair_with_jaccard(
    rng: np.random.Generator, union: int, jaccard: float
) -> tuple[list[bytes], list[bytes]]:
    """Two shingle sets whose Jaccard similarity is exactly common / union."""
    common = round(union * jaccard)
    unique = (union - common) // 2
    tokens = [
        bytes(rng.integers(0, 256, size=12, dtype=np.uint8)) for _ in range(common + 2 * unique)
    ]
    shared = tokens[:common]
    return shared + tokens[common : common + unique], shared + tokens[common + unique :]


@pytest.mark.parametrize(
    "jaccard,min_rate,max_rate",
    [
        # 14 bands x 8 rows: P(candidate) = 1 - (1 - J^8)^14.
        (0.95, 0.99, 1.0),  # theory 1.000
        (0.85, 0.95, 1.0),  # theory 0.988
        (0.80, 0.85, 1.0),  # theory 0.924: 95% at exactly J=0.8 is beyond what 14x8 gives
        (0.50, 0.0, 0.12),  # theory 0.053
        (0.30, 0.0, 0.02),  # theory 0.001
    ],
)
def test_lsh_candidate_rate_follows_s_curve(
    hasher: MinHasher, jaccard: float, min_rate: float, max_rate: float
) -> None:
    rng = np.random.default_rng(int(jaccard * 1000))
    pairs = 250
    hits = 0
    for _ in range(pairs):
        # 200 shingles in the union: J is exact (common = 200*J, 200*(1-J) split evenly).
        s1, s2 = _pair_with_jaccard(rng, 200, jaccard)
        k1 = hasher.band_keys(hasher.signature_of_shingles(s1))
        k2 = hasher.band_keys(hasher.signature_of_shingles(s2))
        hits += bool((k1 == k2).any())
    rate = hits / pairs
    assert min_rate <= rate <= max_rate, f"J={jaccard}: candidate rate {rate:.3f}"


# ---------------------------------------------------------------- config


def test_config_rejects_bands_times_rows_mismatch() -> None:
    with pytest.raises(ValidationError, match=r"bands \* dedup.rows must equal"):
        DedupConfig(num_perm=112, bands=10, rows=8)
    with pytest.raises(ConfigError, match="set num_perm to 80"):
        build_config({"dedup": {"bands": 10}})
    cfg = build_config({"dedup": {"num_perm": 128, "bands": 16, "rows": 8}})
    assert cfg.dedup.bands == 16


def test_config_every_field_is_documented() -> None:
    for name, info in DedupConfig.model_fields.items():
        assert info.description, f"DedupConfig.{name} has no description"

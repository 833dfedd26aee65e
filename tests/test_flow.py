"""source → stages → sinks (``run_flow``), and phase 1's survivors file written and read back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from dataproc.document import Document, Reject
from dataproc.io.documents import DocsSink, DocsSource
from dataproc.stages.base import RejectSink, Stage, run_flow
from dataproc.stats import StageStats, StatsSet


class ListSource:
    name: ClassVar[str | None] = "listed"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def read(self, stats: StageStats, reject: RejectSink) -> Iterator[Document]:
        for i, t in enumerate(self.texts):
            stats.docs_in += 1
            stats.docs_out += 1
            yield Document(id=str(i), url=f"https://x.example/{i}", source="s", doc_index=i, text=t)


class DropShort(Stage):
    name = "drop_short"
    REASONS = ("too_short",)

    def process(self, doc: Document) -> Document | Reject:
        if doc.text == "boom":
            raise RuntimeError("stage failed")
        return Reject("too_short") if len(doc.text) < 3 else doc


class Collect:
    def __init__(self, name: str | None) -> None:
        self.name = name  # type: ignore[misc]  # a per-instance name for the test
        self.docs: list[str] = []
        self.state = "open"

    def write(self, doc: Document) -> None:
        self.docs.append(doc.text)

    def close(self) -> list[str]:
        self.state = "closed"
        return self.docs

    def abort(self) -> None:
        self.state = "aborted"


def test_source_stages_sinks_count_in_one_stats_set() -> None:
    stats, dropped = StatsSet(), []
    counted, plain = Collect("signed"), Collect(None)
    results = run_flow(
        ListSource(["hello", "no", "world"]),
        [DropShort()],
        [counted, plain],  # type: ignore[list-item]
        stats,
        lambda d, stage, r: dropped.append((d.id, stage, r.reason)),
    )
    assert results == [["hello", "world"], ["hello", "world"]]
    assert [s.name for s in stats] == ["listed", "drop_short", "signed"]
    assert (stats.get("signed").docs_in, stats.get("signed").docs_out) == (2, 2)
    assert dropped == [("1", "drop_short", "too_short")]
    assert counted.state == plain.state == "closed"


def test_a_failure_anywhere_aborts_every_sink() -> None:
    sinks = [Collect("a"), Collect(None)]
    with pytest.raises(RuntimeError, match="stage failed"):
        run_flow(ListSource(["fine", "boom"]), [DropShort()], sinks, StatsSet(), lambda *a: None)  # type: ignore[arg-type]
    assert [s.state for s in sinks] == ["aborted", "aborted"]


def test_survivors_file_round_trips_and_is_published_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "000000.parquet"
    docs = [
        Document(id="a", url="https://x.example/a", source="s", doc_index=3, text="one",
                 language="en", language_score=0.9),
        Document(id="b", url="https://x.example/b", source="s", doc_index=7, text="two",
                 warc_target_uri="https://web.archive.org/web/1/https://x.example/b"),
    ]  # fmt: skip
    sink = DocsSink(str(path))
    for d in docs:
        sink.write(d)
    assert not path.exists()
    assert sink.close() == 2
    back = list(DocsSource(str(path)).read(StageStats("x"), lambda *a: None))
    assert [(d.id, d.doc_index, d.text, d.language) for d in back] == [
        ("a", 3, "one", "en"),
        ("b", 7, "two", None),
    ]
    # A document without its WARC-Target-URI gets its URL, as in the token files.
    assert [d.warc_target_uri for d in back] == [
        "https://x.example/a",
        "https://web.archive.org/web/1/https://x.example/b",
    ]
    aborted = DocsSink(str(tmp_path / "docs" / "000001.parquet"))
    aborted.write(docs[0])
    aborted.abort()
    assert sorted(p.name for p in path.parent.iterdir()) == ["000000.parquet"]

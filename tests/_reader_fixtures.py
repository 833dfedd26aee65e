"""The reader with its accounting checked: what every reader test and the e2e input tests use."""

from __future__ import annotations

import io

from dataproc.document import Document, Reject
from dataproc.readers.config import ReaderConfig
from dataproc.readers.records import REASONS
from dataproc.readers.warc import read_warc
from dataproc.stats import StageStats


class Result:
    """Everything one read_warc call produced."""

    def __init__(
        self, docs: list[Document], stats: StageStats, rejects: list[tuple[Document, Reject]]
    ):
        self.docs = docs
        self.stats = stats
        self.rejects = rejects

    @property
    def reject_reasons(self) -> list[str]:
        return [r.reason for _, r in self.rejects]


def read(
    data: bytes,
    config: ReaderConfig | None = None,
    source: str = "s3://b/x.warc.gz",
    input_index: int = 0,
) -> Result:
    stats = StageStats("read")
    rejects: list[tuple[Document, Reject]] = []

    def sink(doc: Document, stage: str, rej: Reject) -> None:
        assert stage == "read"
        rejects.append((doc, rej))

    docs = list(
        read_warc(
            io.BytesIO(data),
            source=source,
            input_index=input_index,
            config=config or ReaderConfig(),
            stats=stats,
            reject=sink,
        )
    )
    # The stage invariant holds for every input, and every reason is a declared one.
    assert stats.docs_in == stats.docs_out + sum(stats.dropped.values())
    assert stats.docs_out == len(docs)
    assert set(stats.dropped) <= set(REASONS)
    return Result(docs, stats, rejects)

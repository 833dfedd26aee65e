"""Every dropped document leaves a row in ``OUT/rejects/``: id, url, stage, reason, detail."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from dataproc.document import Document, Reject
from dataproc.io import fs

REJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("source", pa.string()),
        ("offset", pa.int64()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


class RejectWriter:
    """Collects rejects for one input file and writes them as one Parquet file on close."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._rows: dict[str, list] = {name: [] for name in REJECT_SCHEMA.names}

    def __call__(self, doc: Document, stage: str, reject: Reject) -> None:
        self.add(doc.id, doc.url, doc.source, doc.offset, stage, reject.reason, reject.detail)

    def add(
        self, id: str, url: str, source: str, offset: int, stage: str, reason: str, detail: str
    ) -> None:
        r = self._rows
        r["id"].append(id)
        r["url"].append(url)
        r["source"].append(source)
        r["offset"].append(offset)
        r["stage"].append(stage)
        r["reason"].append(reason)
        r["detail"].append(detail[:500])

    def __len__(self) -> int:
        return len(self._rows["id"])

    def close(self) -> int:
        """Write the file (even when empty, so a reader sees the shard was processed)."""
        table = pa.table(self._rows, schema=REJECT_SCHEMA)
        with fs.atomic_write(self.path) as f:
            pq.write_table(table, f, compression="zstd")
        return table.num_rows

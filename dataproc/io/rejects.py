"""Every dropped document leaves a row in ``OUT/rejects/``: id, url, stage, reason, detail.

Also its original ``warc_target_uri`` and the ``language`` language ID gave it (null for drops
before language ID). With ``write.rejects_text`` a reject also keeps what the page said, so a
drop can be judged by more than its URL: ``text`` holds the extracted text, or, for pages
dropped before extraction, the first ``HTML_PREVIEW_CHARS`` characters of the HTML (and
``html_bytes`` its size). Both are null when the option is off (the default: rejects stay small).
"""

from __future__ import annotations

from typing import Any

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
        ("warc_target_uri", pa.string()),
        ("language", pa.string()),
        ("text", pa.string()),
        ("html_bytes", pa.int64()),
    ]
)
HTML_PREVIEW_CHARS = 2000
"""Characters of a page's HTML kept in ``text`` when it was dropped before extraction."""


class RejectWriter:
    """Collects rejects for one input file and writes them as one Parquet file on close.

    ``keep_text`` (``write.rejects_text``): also store the text (or HTML preview and size).
    """

    def __init__(self, path: str, keep_text: bool = False) -> None:
        self.path = path
        self.keep_text = keep_text
        self._rows: dict[str, list] = {name: [] for name in REJECT_SCHEMA.names}

    def __call__(self, doc: Document, stage: str, reject: Reject) -> None:
        text: str | None = None
        html_bytes: int | None = None
        if self.keep_text:
            if doc.text:
                text = doc.text
            elif doc.html:
                html_bytes = len(doc.html.encode("utf-8", "surrogatepass"))
                text = doc.html[:HTML_PREVIEW_CHARS]
        self.add(
            doc.id,
            doc.url,
            doc.source,
            doc.offset,
            stage,
            reject.reason,
            reject.detail,
            warc_target_uri=doc.warc_target_uri or doc.url,
            language=doc.language,
            text=text,
            html_bytes=html_bytes,
        )

    def add(
        self,
        id: str,
        url: str,
        source: str,
        offset: int,
        stage: str,
        reason: str,
        detail: str,
        **extra: Any,
    ) -> None:
        """One row; ``extra`` fills the later columns (``warc_target_uri``, ``language``,
        ``text``, ``html_bytes``), which are null when not given."""
        r = self._rows
        r["id"].append(id)
        r["url"].append(url)
        r["source"].append(source)
        r["offset"].append(offset)
        r["stage"].append(stage)
        r["reason"].append(reason)
        r["detail"].append(detail[:500])
        for name in ("warc_target_uri", "language", "text", "html_bytes"):
            r[name].append(extra.get(name))

    def __len__(self) -> int:
        return len(self._rows["id"])

    def close(self) -> int:
        """Write the file (even when empty, so a reader sees the shard was processed)."""
        table = pa.table(self._rows, schema=REJECT_SCHEMA)
        with fs.atomic_write(self.path) as f:
            pq.write_table(table, f, compression="zstd")
        return table.num_rows

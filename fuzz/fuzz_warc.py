"""Coverage-guided fuzzing of the WARC reader (atheris / libFuzzer).

Every input is one whole file handed to ``read_warc``. A finding is any exception escaping
the reader, a broken accounting invariant (``docs_in == docs_out + dropped``), or a document
whose HTML holds NUL characters or lone surrogates. Run it for minutes outside CI::

    /work/venv/bin/python fuzz/fuzz_warc.py -max_total_time=600 -rss_limit_mb=1024

See fuzz/README.md. ``check_warc`` is also what ``tests/regressions`` replays.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing


class FuzzFinding(Exception):
    """An input broke one of the reader's promises."""


def check_warc(data: bytes) -> None:
    """Read ``data`` as a WARC file with small caps; raise FuzzFinding on a broken promise."""
    from dataproc.readers.config import ReaderConfig
    from dataproc.readers.warc import read_warc
    from dataproc.stats import StageStats

    config = ReaderConfig(
        max_payload_bytes=1024,
        max_header_line_bytes=1024,
        max_resync_history_bytes=64 * 1024,
    )
    stats = StageStats("read")
    rejected: list[str] = []
    docs = list(
        read_warc(
            io.BytesIO(data),
            source="fuzz.warc",
            input_index=0,
            config=config,
            stats=stats,
            reject=lambda doc, stage, rej: rejected.append(rej.reason),
        )
    )
    if stats.docs_in != stats.docs_out + stats.docs_dropped:
        raise FuzzFinding(f"accounting broken: {stats.to_dict()}")
    if stats.docs_out != len(docs):
        raise FuzzFinding(f"{len(docs)} documents yielded but docs_out={stats.docs_out}")
    for d in docs:
        if "\x00" in d.html:
            raise FuzzFinding(f"NUL in HTML of {d.id}")
        d.html.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
        if len(d.html) > 4 * config.max_payload_bytes:
            raise FuzzFinding(f"document of {len(d.html)} chars exceeds the payload cap")


def main() -> None:
    import atheris
    from _seeds import warc_seeds, write_seeds

    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = HERE / "corpus" / "warc"
        write_seeds(corpus, warc_seeds())
        args.append(str(corpus))

    def one_input(data: bytes) -> None:
        check_warc(data)

    atheris.instrument_all()
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    import atheris

    with atheris.instrument_imports(include=["dataproc", "warcio"]):
        import dataproc.readers.warc  # noqa: F401
    main()

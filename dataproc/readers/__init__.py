"""Reading input files into Documents, apart from the stages that judge them (nothing here
imports a stage, the runner or the dedup code: tests/test_import_graph.py).

Three layers, bottom up: ``stream`` (the bytes: bounded look-back, one gzip member at a time,
zstd), ``http`` (a response's status, Content-Type and bounded payload decoding) and
``records`` (which record becomes a document, and why the others are dropped). ``warc``
walks a file with warcio and resyncs after damage; ``spans`` cuts a ``.warc.gz`` into byte
ranges at member starts so several workers read one file; ``sniff`` tells what a file is
from its first bytes; ``charset`` turns an HTML payload into text; ``urls`` unwraps
archive-replay URLs. ``config`` is the ``reader`` config section.
"""

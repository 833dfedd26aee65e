"""The sandbox's pipes: widened buffers, and payloads larger than any buffer in both directions."""

from __future__ import annotations

import fcntl
import os

import pytest

from dataproc.stages.sandbox import _PIPE_BYTES, Sandbox, _widen_pipe


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="Linux pipe sizes only")
def test_widen_pipe_grows_the_buffer() -> None:
    r, w = os.pipe()
    try:
        before = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        _widen_pipe(w)
        after = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        # The kernel may cap it at /proc/sys/fs/pipe-max-size; it must never shrink.
        assert after >= before
        with open("/proc/sys/fs/pipe-max-size") as f:
            if int(f.read()) >= _PIPE_BYTES:
                assert after >= _PIPE_BYTES
    finally:
        os.close(r)
        os.close(w)


def test_payloads_bigger_than_the_pipe_round_trip_intact() -> None:
    # 3 MiB out and 3 MiB back (beyond the widened 1 MiB buffer), non-ASCII included, then a
    # small page: a blocked writer on either side would hang here until the timeout.
    big = ("é<p>abc</p>\n" * 300_000)[: 3 << 20]
    with Sandbox(str.upper, timeout_seconds=30) as sandbox:
        result = sandbox.call(big)
        assert result.status == "ok"
        assert result.value == big.upper()
        assert sandbox.call("small").value == "SMALL"

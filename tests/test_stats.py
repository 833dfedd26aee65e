from __future__ import annotations

from collections import Counter

import pytest

from dataproc.document import Document, Reject
from dataproc.errors import StageError
from dataproc.stages.base import Stage, run_stage
from dataproc.stats import StageStats, StatsSet


class DropShort(Stage):
    name = "drop_short"
    REASONS = ("too_short",)

    def process(self, doc):
        return Reject("too_short") if len(doc.text) < 5 else doc


def _docs(texts):
    return [
        Document(id=str(i), url=f"http://x/{i}", source="s", text=t) for i, t in enumerate(texts)
    ]


@pytest.mark.parametrize("batch_size", [1, 2, 10])
def test_run_stage_counts_and_rejects(batch_size):
    stats = StageStats("drop_short")
    seen = []
    out = list(
        run_stage(
            DropShort(),
            _docs(["hello world", "hi", "", "long enough"]),
            stats,
            lambda d, s, r: seen.append((d.id, s, r.reason)),
            batch_size=batch_size,
        )
    )
    assert [d.text for d in out] == ["hello world", "long enough"]
    assert stats.docs_in == 4 and stats.docs_out == 2
    assert stats.dropped == Counter(too_short=2)
    assert seen == [("1", "drop_short", "too_short"), ("2", "drop_short", "too_short")]
    assert stats.docs_in == stats.docs_out + stats.docs_dropped


class CountVowels(Stage):
    name = "vowels"

    def process(self, doc):
        self.count("vowels", sum(doc.text.count(v) for v in "aeiou"))
        return doc


@pytest.mark.parametrize("batch_size", [1, 3])
def test_count_goes_to_the_stats_of_the_stream_run_stage_runs(batch_size):
    stage = CountVowels()
    first, second = StageStats("vowels"), StageStats("vowels")
    list(run_stage(stage, _docs(["banana", "xyz"]), first, lambda *a: None, batch_size))
    list(run_stage(stage, _docs(["queue"]), second, lambda *a: None, batch_size))
    # One stage object serves file after file: each file's stats get that file's counts,
    # and a zero (no vowel in "xyz") is not recorded.
    assert first.counters == Counter(vowels=3)
    assert second.counters == Counter(vowels=4)
    assert StatsSet([first]).to_list()[0]["counters"] == {"vowels": 3}


def test_count_outside_run_stage_goes_to_the_stage_itself():
    stage = CountVowels()
    stage.process(_docs(["aaa"])[0])
    assert stage.counters == Counter(vowels=3)


def test_undeclared_reason_is_a_bug():
    class Bad(Stage):
        name = "bad"
        REASONS = ("a",)

        def process(self, doc):
            return Reject("b")

    with pytest.raises(StageError, match="not one of its REASONS"):
        list(run_stage(Bad(), _docs(["x"]), StageStats("bad"), lambda *a: None))

    class Silent(Stage):  # no REASONS: a promise never to drop
        name = "silent"

        def process(self, doc):
            return Reject("anything")

    with pytest.raises(StageError, match="not one of its REASONS"):
        list(run_stage(Silent(), _docs(["x"]), StageStats("silent"), lambda *a: None))


def test_stats_add_and_roundtrip():
    a = StageStats("s", docs_in=3, docs_out=2, dropped=Counter(x=1), seconds=1.5, cpu_seconds=1)
    b = StageStats("s", docs_in=2, docs_out=2, counters=Counter(tokens=7), cpu_seconds=0.5)
    c = a + b
    assert (c.docs_in, c.docs_out, c.dropped["x"], c.counters["tokens"]) == (5, 4, 1, 7)
    assert c.cpu_seconds == 1.5 and c.to_dict()["cpu_seconds"] == 1.5
    assert StageStats.from_dict(c.to_dict()).to_dict() == c.to_dict()
    with pytest.raises(ValueError):
        a + StageStats("other")
    s = StatsSet([a]) + StatsSet([b, StageStats("t", docs_in=1, docs_out=1)])
    assert [x.name for x in s] == ["s", "t"]
    assert StatsSet.from_list(s.to_list()).to_list() == s.to_list()


class Busy(Stage):
    """Spins ~20 ms of CPU per document; 'its child' has used 0.25 s more per document."""

    name = "busy"

    def __init__(self) -> None:
        self.child_cpu = 0.0

    def cpu_elsewhere(self) -> float:
        return self.child_cpu

    def process(self, doc):
        import time

        end = time.thread_time() + 0.02
        while time.thread_time() < end:
            pass
        self.child_cpu += 0.25
        return doc


@pytest.mark.parametrize("batch_size", [1, 3])
def test_stage_cpu_seconds_count_own_thread_and_helpers(batch_size):
    stage, stats = Busy(), StageStats("busy")
    stage.child_cpu = 7.0  # CPU used before this run (an earlier file) is not counted again
    out = list(run_stage(stage, _docs(["a", "b", "c", "d"]), stats, lambda *a: None, batch_size))
    assert len(out) == 4
    own = stats.cpu_seconds - 4 * 0.25
    assert 0.08 <= own <= stats.seconds + 0.01  # CPU never exceeds wall for one thread

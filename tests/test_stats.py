from __future__ import annotations

from collections import Counter

import pytest

from dataproc.document import Document, Reject
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


def test_undeclared_reason_is_a_bug():
    class Bad(Stage):
        name = "bad"
        REASONS = ("a",)

        def process(self, doc):
            return Reject("b")

    with pytest.raises(ValueError, match="not one of its REASONS"):
        list(run_stage(Bad(), _docs(["x"]), StageStats("bad"), lambda *a: None))


def test_stats_add_and_roundtrip():
    a = StageStats("s", docs_in=3, docs_out=2, dropped=Counter(x=1), seconds=1.5)
    b = StageStats("s", docs_in=2, docs_out=2, counters=Counter(tokens=7))
    c = a + b
    assert (c.docs_in, c.docs_out, c.dropped["x"], c.counters["tokens"]) == (5, 4, 1, 7)
    assert StageStats.from_dict(c.to_dict()).to_dict() == c.to_dict()
    with pytest.raises(ValueError):
        a + StageStats("other")
    s = StatsSet([a]) + StatsSet([b, StageStats("t", docs_in=1, docs_out=1)])
    assert [x.name for x in s] == ["s", "t"]
    assert StatsSet.from_list(s.to_list()).to_list() == s.to_list()

"""URL filter: block lists (plain files and UT1 layout), word rules, exemptions, errors, speed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dataproc.document import Document, Reject
from dataproc.errors import ConfigError
from dataproc.stages.base import run_stage
from dataproc.stages.url_filter import UrlFilter, UrlFilterConfig
from dataproc.stats import StageStats


def _filter(**kw: object) -> UrlFilter:
    f = UrlFilter(UrlFilterConfig(**kw))
    f.setup()
    return f


def _ut1(root: Path) -> Path:
    """A small UT1-style blacklist tree: adult and gambling categories."""
    (root / "adult").mkdir(parents=True)
    (root / "adult" / "domains").write_text("# comment\nbadsite.com\nWWW.Other-Bad.org\n1.2.3.4\n")
    (root / "adult" / "urls").write_text("host.net/adult/section\nhttp://www.mixed.org/nsfw/\n")
    (root / "gambling").mkdir()
    (root / "gambling" / "domains").write_text("casino-royal.example\n")
    (root / "gambling" / "urls").write_text("")
    return root


def test_clean_urls_pass() -> None:
    f = _filter()
    for url in (
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
        "https://news.example.com/2024/01/15/local-elections.html?page=2",
        "https://essexcamping.co.uk/sites",
        "http://example.com/live-video-of-the-hot-air-balloon",
    ):
        assert f.check(url) is None, url


def test_hard_banned_word() -> None:
    assert _filter().check("https://example.com/free-porn-videos") == Reject(
        "hard_banned_word", "word:porn"
    )


def test_hard_word_is_a_token_not_a_substring() -> None:
    f = _filter(use_default_word_lists=False, extra_banned_words=["bad"])
    assert f.check("https://example.com/badminton") is None
    assert f.check("https://example.com/so_BAD.html").reason == "hard_banned_word"


def test_soft_words_need_threshold() -> None:
    f = _filter(use_default_word_lists=False, extra_soft_banned_words=["hot", "girls", "Sexy"])
    assert f.check("https://example.com/hot-soup") is None
    r = f.check("https://example.com/hot/sexy-recipes")
    assert r == Reject("soft_banned_words", "soft_words:hot,sexy")
    assert (
        _filter(
            use_default_word_lists=False,
            extra_soft_banned_words=["hot", "girls"],
            soft_word_threshold=3,
        ).check("https://example.com/hot-girls")
        is None
    )


def test_banned_subword_matches_inside_normalized_url() -> None:
    f = _filter(use_default_word_lists=False, extra_banned_subwords=["spamword", "spam-words-x"])
    assert f.check("https://example.com/my-spam_word-page") == Reject(
        "banned_subword", "subword:spamword"
    )
    # the longest entry found at the first hit is reported
    assert f.check("https://example.com/spamwordsx").detail == "subword:spamwordsx"
    assert f.check("https://example.com/spam-w") is None


def test_default_subwords() -> None:
    assert _filter().check("https://clips.example.com/watch/xvideos123").reason == "banned_subword"


def test_domain_and_subdomain_blocking(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("badsite.com\n")
    f = _filter(domain_files=[str(tmp_path / "d.txt")], use_default_word_lists=False)
    assert f.check("https://badsite.com/x") == Reject("blocked_domain", "domain:badsite.com")
    assert f.check("https://www.badsite.com/x") == Reject("blocked_domain", "domain:badsite.com")
    assert f.check("http://a.b.badsite.com:8080/") == Reject(
        "blocked_subdomain", "subdomain:badsite.com"
    )
    assert f.check("https://notbadsite.com/") is None
    assert f.check("https://badsite.com.evil.net/") is None


def test_ut1_layout_and_categories(tmp_path: Path) -> None:
    root = _ut1(tmp_path / "blacklists")
    f = _filter(blocklist_dirs=[str(root)], use_default_word_lists=False)
    assert f.check("https://other-bad.org/").reason == "blocked_domain"
    assert f.check("http://1.2.3.4/index").reason == "blocked_domain"
    assert f.check("https://casino-royal.example/") is None  # gambling not selected
    assert f.check("https://host.net/adult/section") == Reject(
        "blocked_url", "url:host.net/adult/section"
    )
    assert f.check("https://www.host.net/adult/section/page.html?x=1").reason == "blocked_url"
    assert f.check("https://host.net/adult/sectionX") is None
    assert f.check("https://host.net/adult") is None
    assert f.check("https://mixed.org/nsfw").reason == "blocked_url"

    both = _filter(
        blocklist_dirs=[str(root)],
        blocklist_categories=["adult", "gambling"],
        use_default_word_lists=False,
    )
    assert both.check("https://casino-royal.example/").reason == "blocked_domain"


def test_url_files(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("example.org/private\n")
    f = _filter(url_files=[str(tmp_path / "u.txt")], use_default_word_lists=False)
    assert f.check("https://example.org/private/a").reason == "blocked_url"
    assert f.check("https://example.org/public") is None


def test_allowed_domains_are_exempt(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("bad.com\n")
    f = _filter(
        domain_files=[str(tmp_path / "d.txt")],
        allowed_domains=["good.bad.com", "porn-research.edu"],
    )
    assert f.check("https://good.bad.com/") is None
    assert f.check("https://x.porn-research.edu/porn-studies") is None
    assert f.check("https://other.bad.com/").reason == "blocked_subdomain"


def test_invalid_url() -> None:
    f = _filter()
    assert f.check("not a url").reason == "invalid_url"
    assert f.check("http://[::1/").reason == "invalid_url"


@pytest.mark.parametrize("key", ["domain_files", "url_files", "blocklist_dirs"])
def test_missing_files_raise_config_error_naming_path(tmp_path: Path, key: str) -> None:
    missing = str(tmp_path / "nope")
    f = UrlFilter(UrlFilterConfig(**{key: [missing]}))
    with pytest.raises(ConfigError, match="nope"):
        f.setup()


def test_missing_category_raises(tmp_path: Path) -> None:
    root = _ut1(tmp_path / "bl")
    with pytest.raises(ConfigError, match="phishing"):
        _filter(blocklist_dirs=[str(root)], blocklist_categories=["phishing"])


def test_run_stage_counts_and_reasons(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("badsite.com\n")
    f = _filter(domain_files=[str(tmp_path / "d.txt")])
    urls = ["https://ok.com/a", "https://badsite.com/", "https://x.com/porn", "https://fine.org/"]
    docs = [Document(id=str(i), url=u, source="s") for i, u in enumerate(urls)]
    stats = StageStats("url_filter")
    seen: list[tuple[str, str]] = []
    out = list(run_stage(f, docs, stats, lambda d, s, r: seen.append((d.url, r.reason))))
    assert [d.url for d in out] == ["https://ok.com/a", "https://fine.org/"]
    assert stats.docs_in == 4 and stats.docs_out == 2
    assert dict(stats.dropped) == {"blocked_domain": 1, "hard_banned_word": 1}
    assert all(reason in UrlFilter.REASONS for _, reason in seen)


def test_matching_is_fast_on_long_urls(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("\n".join(f"site{i}.com" for i in range(20000)))
    (tmp_path / "u.txt").write_text("\n".join(f"host{i}.org/p/{i}" for i in range(20000)))
    f = _filter(domain_files=[str(tmp_path / "d.txt")], url_files=[str(tmp_path / "u.txt")])
    start = time.perf_counter()
    assert f.check("https://a.b.c.example.com/" + "b/" * 100_000 + "?q=" + "x-" * 50_000) is None
    assert f.check("https://" + "a." * 100_000 + "com/").reason == "invalid_url"
    assert f.check("https://example.com/" + "pornstapornhu" * 15_000) is None  # near misses
    assert time.perf_counter() - start < 1.0

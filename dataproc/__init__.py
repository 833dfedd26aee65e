"""dataproc: Common Crawl WARC shards to training-ready tokenized Parquet, on Ray.

The public surface is small::

    import dataproc
    config = dataproc.load_config("pipelines/commoncrawl_en.yaml", ["langid.min_score=0.8"])
    config = config.model_copy(update={"inputs": ["crawl/*.warc.gz"], "output": "out/"})
    result = dataproc.run(config)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dataproc.version import __version__

__all__ = ["Document", "PipelineConfig", "__version__", "load_config", "run"]

if TYPE_CHECKING:
    from dataproc.config import PipelineConfig
    from dataproc.document import Document
    from dataproc.runner.driver import RunResult


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import dataproc` cheap (no pydantic/ray import until needed).
    if name in ("PipelineConfig", "load_config"):
        from dataproc import config

        return getattr(config, name)
    if name == "Document":
        from dataproc.document import Document

        return Document
    raise AttributeError(name)


def run(
    config: PipelineConfig, *, overwrite: bool = False, verify_files: bool = False
) -> RunResult:
    """Run the pipeline described by ``config`` on Ray; see ``dataproc.runner.driver``."""
    from dataproc.runner.driver import run_pipeline

    return run_pipeline(config, overwrite=overwrite, verify_files=verify_files)

"""Typed pipeline configuration: YAML files in ``pipelines/``, overridable with ``--set``.

Every option has a default, so ``PipelineConfig()`` is a complete, sensible pipeline
(FineWeb-like English). Errors name the file, the key path, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from dataproc.configbase import StrictModel
from dataproc.dedup.config import DedupConfig
from dataproc.errors import ConfigError
from dataproc.readers.config import ReaderConfig
from dataproc.stages.consent import ConsentConfig
from dataproc.stages.decontaminate import DecontamConfig
from dataproc.stages.extract import ExtractConfig
from dataproc.stages.langid import LangIdConfig
from dataproc.stages.pii import PiiConfig
from dataproc.stages.prefilter import PrefilterConfig
from dataproc.stages.quality import QualityConfig
from dataproc.stages.tokenize import TokenizerConfig
from dataproc.stages.url_filter import UrlFilterConfig
from dataproc.steps import spec
from dataproc.steps.builtin import BUILTINS, DEFAULT_STEPS
from dataproc.steps.spec import Step


class OutputConfig(StrictModel):
    """How the tokenized Parquet shards are written."""

    keep_text: bool = Field(False, description="Also write the scrubbed text in a `text` column.")
    rejects_text: bool = Field(
        False,
        description="Also store what each dropped document said in `rejects/`: its text, or "
        "for pages dropped before extraction the first 2,000 characters of the HTML and its "
        "size (`text`, `html_bytes`). Off: rejects carry URL, stage, reason and detail only.",
    )
    max_file_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Roll over to a new Parquet file once this many (uncompressed token) bytes are written.",
    )
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field(
        "zstd", description="Parquet compression codec."
    )
    compression_level: int = Field(3, ge=1, le=22, description="zstd level.")
    row_group_rows: int = Field(
        1024, ge=1, description="Documents per Parquet row group (smaller = finer random access)."
    )
    row_group_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="A row group also ends once it holds this many bytes of tokens (4 per token, "
        "plus the text when `keep_text`): bounds memory with long documents.",
    )


class ExecutionConfig(StrictModel):
    """Where and how the job runs on Ray."""

    address: str | None = Field(
        None,
        description="Ray address to join (`auto`, `ray://host:10001`, ...). "
        "None: use RAY_ADDRESS if set, else start a local cluster bound to 127.0.0.1.",
    )
    workers: int | None = Field(
        None, ge=1, description="CPUs to use on a local cluster (None: all of this machine's)."
    )
    cpus_per_task: float = Field(1.0, gt=0, description="Ray CPUs reserved per shard task.")
    max_retries: int = Field(
        3, ge=0, description="Ray retries of a shard task after a crash or exception."
    )
    object_store_memory: int | None = Field(
        None,
        ge=78643200,
        description="Object store bytes for a local cluster (None: Ray's default).",
    )
    include_dashboard: bool = Field(
        False, description="Start Ray's dashboard on a local cluster (bound to 127.0.0.1)."
    )
    split_min_bytes: int | None = Field(
        16 * 1024 * 1024,
        ge=4096,
        description="Phase 1 reads a per-record-gzip WARC in byte ranges on several workers when "
        "there are fewer input files than task slots x `split_ranges_per_slot`: each range is "
        "at least this many bytes and about (all input bytes) / (slots x "
        "`split_ranges_per_slot`). None: every file is read by one task. The output is the "
        "same either way (docs/performance.md).",
    )
    split_ranges_per_slot: int = Field(
        4,
        ge=1,
        le=64,
        description="Units of phase-1 work (files or ranges) aimed at per task slot when files "
        "are split: more evens out ranges that cost more than others.",
    )
    progress: Literal["auto", "bar", "log", "none"] = Field(
        "auto", description="Progress display: bar on a TTY, periodic log lines otherwise."
    )
    progress_interval_seconds: float = Field(
        10.0, gt=0, description="Seconds between progress log lines when not on a TTY."
    )


def _default_steps() -> list[Step]:
    return [Step(use=s) for s in DEFAULT_STEPS]


class PipelineConfig(StrictModel):
    """The whole pipeline: inputs, outputs, the phase-1 steps and one section per stage."""

    name: str = Field("default", description="A name for this pipeline, written to the manifest.")
    inputs: list[str] = Field(
        default_factory=list,
        description="WARC files, directories or globs (local, s3://, https://, gs://).",
    )
    output: str | None = Field(None, description="Output folder (local path or URL).")
    steps: list[Step] = Field(
        default_factory=_default_steps,
        description="The phase-1 document steps, in order: built-in names (`url_filter`, "
        "`consent`, `prefilter`, `extract`, `langid`, `quality` or its parts `gopher_repetition`, "
        "`gopher_quality`, `c4`, `fineweb`, `pii`, `decontaminate`) or `module:Class` for your "
        "own Stage subclass. An entry may carry its settings (`- langid: {min_score: 0.8}`); "
        "they are the step's section, so set each key in one place. See docs/stages.md.",
    )
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    url_filter: UrlFilterConfig = Field(default_factory=UrlFilterConfig)
    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    prefilter: PrefilterConfig = Field(default_factory=PrefilterConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    decontaminate: DecontamConfig = Field(default_factory=DecontamConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    write: OutputConfig = Field(default_factory=OutputConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @model_validator(mode="before")
    @classmethod
    def _resolve_steps(cls, data: Any) -> Any:
        """Inline step settings into their sections; user steps take their own section."""
        if not isinstance(data, dict) or "steps" not in data:
            return data
        data = spec.normalize(data)
        steps = []
        for use in data["steps"]:
            if spec.is_user_step(use):
                name = spec.step_name(use)
                if name in cls.model_fields:  # its settings would be that section
                    raise spec.name_taken(use, name)
                section = data.pop(name, None)
                steps.append(Step(use=use, settings=spec.user_settings(use, section)))
            else:
                steps.append(Step(use=use))
        return {**data, "steps": steps}

    @model_validator(mode="after")
    def _check_steps(self) -> PipelineConfig:
        spec.check_order(self.steps)
        return self

    def step_names(self) -> list[str]:
        """The stage names of the steps, in order, groups (``quality``) expanded."""
        return [name for name, _ in spec.expanded(self.steps)]

    def show(self) -> dict[str, Any]:
        """The resolved config as ``dataproc config show`` prints it (valid input again): each
        step with its settings in its entry, the other sections as they are."""
        data = self.model_dump(mode="json")
        steps: list[Any] = []
        for step in self.steps:
            if not step.builtin:
                steps.append(step.model_dump(mode="json"))
                continue
            *parents, leaf = BUILTINS[step.use].section
            node = data
            for part in parents:
                node = node[part]
            steps.append({step.use: node.pop(leaf)})
        data["steps"] = steps
        return data

    def fingerprint(self) -> str:
        """Hash of everything that changes the output (not inputs/output/execution)."""
        data = self.model_dump(mode="json", exclude={"inputs", "output", "execution", "name"})
        # The default step list hashes as before step lists existed: such runs still resume.
        if data["steps"] == list(DEFAULT_STEPS):
            del data["steps"]
        # Index folders live in OUT (their content is fixed by consent.robots and the eval
        # sets' sha256): the same run must keep its fingerprint whatever OUT is called.
        data["consent"].pop("robots_index", None)
        data["decontaminate"].pop("index", None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _section_keys(loc: tuple[Any, ...]) -> list[str]:
    """The option names of the config section at ``loc`` (for 'unknown key' errors)."""
    model: Any = PipelineConfig
    for part in loc:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None or not hasattr(field.annotation, "model_fields"):
            return []
        model = field.annotation
    return list(model.model_fields)


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_section_keys(e["loc"][:-1]))
            lines.append(
                f"{source}: unknown key {path!r}; valid keys here: {allowed} (see docs/configuration.md)"
            )
        else:
            shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{...}"
            if len(shown) > 80:
                shown = shown[:77] + "..."
            lines.append(f"{source}: {path}={shown}: {e['msg']}")
    return "\n".join(lines)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set langid.min_score=0.8")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a raw config dict."""
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def build_config(
    data: dict[str, Any] | None = None, overrides: list[str] | None = None, source: str = "config"
) -> PipelineConfig:
    """Validate a raw dict (plus overrides) into a PipelineConfig, raising ConfigError.

    Step settings written in the ``steps`` list are moved into their sections first, so an
    override changes a setting wherever the file wrote it."""
    raw = copy.deepcopy(dict(data or {}))
    if overrides:
        # Blame the file for the file's mistakes, and --set for its own.
        raw = _normalized(raw, source)
        _validate(raw, source)
        raw = apply_overrides(raw, overrides)
        source = "--set"
    return _validate(raw, source)


def _normalized(raw: dict[str, Any], source: str) -> dict[str, Any]:
    try:
        return spec.normalize(raw)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _validate(raw: dict[str, Any], source: str) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
    except ConfigError as e:  # the steps list: unknown step, bad order, a user step's settings
        raise ConfigError(f"{source}: {e}") from None


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> PipelineConfig:
    """Load a pipeline YAML file (or the defaults when ``path`` is None) and apply overrides."""
    if path is None:
        return build_config({}, overrides, source="defaults")
    p = Path(path)
    if not p.exists():
        bundled = Path(__file__).parent / "data" / "pipelines" / p.name
        if bundled.exists():
            p = bundled
        else:
            raise ConfigError(f"{path}: no such config file (ready ones are in pipelines/)")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of sections, got {type(data).__name__}"
        )
    return build_config(data, overrides, source=str(path))

"""The ``steps:`` list of a pipeline: entries, where their settings live, user steps, order.

An entry is a step name (``langid``), a name with settings (``langid: {min_score: 0.8}``), or
``module:Class`` (with or without settings) for a user's own ``Stage`` subclass installed in
the environment. **A step's settings are the config section named after it** (``langid:``;
``quality.c4`` for ``c4``; for a user step, the section named after its ``name``). Settings
written in the entry are moved into that section when the file is read; a key set in both
places is an error. So ``--set langid.min_score=0.8`` and ``--set <user step>.<key>=...``
change a step's setting wherever the file wrote it.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_serializer, model_validator

from dataproc.errors import ConfigError
from dataproc.stages.base import Stage
from dataproc.steps.builtin import BUILTINS, RESERVED_NAMES, WorksOn

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Step(BaseModel):
    """One entry of the resolved ``steps`` list.

    ``use`` is a built-in step name or ``module:Class``. ``settings`` is set for user steps
    only (their ``Config`` with every default filled in); a built-in step's settings are its
    config section. Dumps back to the YAML form: ``name`` or ``{module:Class: settings}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    use: str
    settings: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_entry(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"use": value}
        if isinstance(value, dict) and "use" not in value and len(value) == 1:
            ((use, settings),) = value.items()
            return {"use": use, "settings": settings}
        return value

    @model_serializer
    def _to_entry(self) -> str | dict[str, Any]:
        return self.use if self.settings is None else {self.use: self.settings}

    @property
    def builtin(self) -> bool:
        """True for a built-in step (its settings are a section of the pipeline config)."""
        return self.use in BUILTINS


def is_user_step(use: str) -> bool:
    """``module:Class`` names a user's own step; anything else must be a built-in name."""
    return ":" in use


def _unknown(use: str, where: str) -> ConfigError:
    near = difflib.get_close_matches(use, list(BUILTINS), n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return ConfigError(
        f"{where}: unknown step {use!r}; {hint}built-in steps: {', '.join(BUILTINS)}, or "
        "`module:Class` for your own Stage subclass (docs/stages.md)"
    )


@functools.cache
def load_step_class(use: str) -> type[Stage]:
    """The ``Stage`` subclass named by ``module:Class`` (ConfigError naming what is wrong)."""
    module_name, _, attr = use.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"step {use!r}: expected `module:Class`, e.g. my_filters:ShoutingFilter")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:  # any failure of the user's module is a config error, said once
        raise ConfigError(
            f"step {use!r}: cannot import {module_name!r}: {type(e).__name__}: {e} (install it "
            "in this environment, or add its folder to PYTHONPATH)"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"step {use!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Stage)) or obj is Stage:
        raise ConfigError(f"step {use!r}: {attr} is not a subclass of dataproc.stages.base.Stage")
    name = obj.__dict__.get("name") or getattr(obj, "name", "stage")
    if not isinstance(name, str) or not _NAME.match(name) or name == "stage":
        raise ConfigError(
            f"step {use!r}: set `name` on the class to a lower-case identifier (its stats.json "
            f"and rejects name, and its settings section), got {name!r}"
        )
    if name in BUILTINS or name in RESERVED_NAMES:
        raise name_taken(use, name)
    reasons = obj.REASONS
    if not isinstance(reasons, tuple) or not all(isinstance(r, str) and r for r in reasons):
        raise ConfigError(f"step {use!r}: REASONS must be a tuple of drop reasons (strings)")
    if obj.WORKS_ON not in ("html", "text", "extract"):
        raise ConfigError(f"step {use!r}: WORKS_ON must be 'html', 'text' or 'extract'")
    config_cls = getattr(obj, "Config", None)
    if config_cls is not None and not (
        isinstance(config_cls, type) and issubclass(config_cls, BaseModel)
    ):
        raise ConfigError(f"step {use!r}: {attr}.Config must be a pydantic model")
    return obj


def name_taken(use: str, name: str) -> ConfigError:
    """The error for a user step whose ``name`` a built-in step or config section has."""
    return ConfigError(
        f"step {use!r}: name {name!r} is taken by a built-in step or config section; choose another"
    )


def step_name(use: str) -> str:
    """The stage name of a step (``stats.json``, rejects, its settings section)."""
    return load_step_class(use).name if is_user_step(use) else use


def section_path(use: str, where: str) -> tuple[str, ...]:
    """Where the settings of step ``use`` live in the pipeline config."""
    if is_user_step(use):
        return (step_name(use),)
    if use not in BUILTINS:
        raise _unknown(use, where)
    return BUILTINS[use].section


def _entry(entry: Any, where: str) -> tuple[str, Any]:
    """(step, inline settings or None) of one ``steps`` entry."""
    if isinstance(entry, Step):
        return entry.use, entry.settings
    if isinstance(entry, str):
        return entry.strip(), None
    if isinstance(entry, dict) and len(entry) == 1:
        ((use, settings),) = entry.items()
        if isinstance(use, str) and (settings is None or isinstance(settings, dict)):
            return use.strip(), settings
    raise ConfigError(
        f"{where}: expected a step name (`- langid`) or a name with its settings "
        f"(`- langid: {{min_score: 0.8}}`), got {entry!r}"
    )


def _merge(
    raw: dict[str, Any], path: tuple[str, ...], settings: dict[str, Any], where: str
) -> None:
    """Put ``settings`` into ``raw`` at ``path``; a key already set there is an error."""
    node = raw
    for part in path:
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(path)}: expected a section (mapping), got {child!r}")
        node[part] = child = dict(child)  # copied: never change the caller's dicts
        node = child
    _merge_keys(node, settings, ".".join(path), where)


def _merge_keys(node: dict[str, Any], settings: dict[str, Any], at: str, where: str) -> None:
    for key, value in settings.items():
        if key in node and isinstance(node[key], dict) and isinstance(value, dict):
            node[key] = dict(node[key])
            _merge_keys(node[key], value, f"{at}.{key}", where)
        elif key in node:
            raise ConfigError(
                f"{at}.{key} is set both in {where} and in the `{at.split('.')[0]}` section; "
                "set it in one place"
            )
        else:
            node[key] = value


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a config mapping) with every step's inline settings moved into its section.

    ``steps`` becomes a list of step names; nothing else changes. Idempotent."""
    if "steps" not in raw:
        return raw
    steps = raw["steps"]
    if not isinstance(steps, list | tuple):
        raise ConfigError(
            f"steps: expected a list of steps (built-in names or `module:Class`), got {steps!r}"
        )
    raw = dict(raw)
    names: list[str] = []
    for i, entry in enumerate(steps):
        where = f"steps[{i}]"
        use, settings = _entry(entry, where)
        path = section_path(use, where)
        if settings:
            _merge(raw, path, settings, f"{where} ({use})")
        names.append(use)
    raw["steps"] = names
    return raw


def user_settings(use: str, section: Any) -> dict[str, Any]:
    """A user step's settings validated by its ``Config`` (defaults filled in), as JSON data."""
    cls = load_step_class(use)
    config_cls = getattr(cls, "Config", None)
    name = cls.name
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: expected the settings of step {use!r} (a mapping)")
    if config_cls is None:
        if section:
            raise ConfigError(f"{name}: step {use!r} takes no settings (its class has no Config)")
        return {}
    unknown = sorted(set(section) - set(config_cls.model_fields))
    if unknown:
        raise ConfigError(
            f"{name}: unknown setting {unknown[0]!r} of step {use!r}; valid settings: "
            f"{', '.join(config_cls.model_fields) or '(none)'}"
        )
    try:
        settings = config_cls.model_validate(section)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(p) for p in e["loc"])
        raise ConfigError(f"{name}.{key}={e.get('input')!r}: {e['msg']}") from None
    return dict(settings.model_dump(mode="json"))


def expanded(steps: list[Step]) -> list[tuple[str, WorksOn]]:
    """(stage name, what it works on) of every step, groups (``quality``) expanded."""
    out: list[tuple[str, WorksOn]] = []
    for s in steps:
        if s.builtin:
            b = BUILTINS[s.use]
            out.extend((n, BUILTINS[n].works_on) for n in b.includes or (b.name,))
        else:
            cls = load_step_class(s.use)
            out.append((cls.name, cls.WORKS_ON))
    return out


def check_order(steps: list[Step]) -> None:
    """Each step once, exactly one ``extract``, page (html) steps before it, text steps after."""
    names = expanded(steps)
    seen: set[str] = set()
    for name, _ in names:
        if name in seen:
            groups = [
                f"{b.name} includes {', '.join(b.includes)}"
                for b in BUILTINS.values()
                if name in b.includes
            ]
            note = f" ({'; '.join(groups)})" if groups else ""
            raise ConfigError(f"steps: {name!r} is listed twice{note}")
        seen.add(name)
    extracts = [i for i, (_, w) in enumerate(names) if w == "extract"]
    if len(extracts) != 1:
        got = ", ".join(names[i][0] for i in extracts) or "none"
        raise ConfigError(
            "steps: a pipeline needs exactly one step that turns HTML into text (`extract`); "
            f"found {got}"
        )
    at = extracts[0]
    for i, (name, works_on) in enumerate(names):
        if works_on == "html" and i > at:
            raise ConfigError(
                f"steps: {name!r} works on the page (HTML, URL, headers) and must come before "
                f"{names[at][0]!r}, which replaces the HTML by its text"
            )
        if works_on == "text" and i < at:
            raise ConfigError(
                f"steps: {name!r} works on the extracted text and must come after {names[at][0]!r}"
            )

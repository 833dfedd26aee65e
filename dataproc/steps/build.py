"""Build the phase-1 stages of a resolved pipeline config, in the order of its ``steps``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dataproc.errors import ConfigError
from dataproc.steps.builtin import BUILTINS
from dataproc.steps.spec import load_step_class

if TYPE_CHECKING:
    from dataproc.config import PipelineConfig
    from dataproc.stages.base import Stage
    from dataproc.steps.spec import Step


def user_stage(step: Step) -> Stage:
    """A user step's stage: ``Class(Class.Config(**settings))``, or ``Class()`` without Config."""
    cls: Any = load_step_class(step.use)  # its own __init__ signature: (config) or ()
    config_cls = getattr(cls, "Config", None)
    try:
        if config_cls is None:
            stage: Stage = cls()
        else:
            stage = cls(config_cls.model_validate(step.settings or {}))
    except ConfigError:
        raise
    except Exception as e:  # the user's constructor: name the step, not a stack of ours
        raise ConfigError(f"step {step.use!r}: building it failed: {type(e).__name__}: {e}") from e
    return stage


def check_user_steps(config: PipelineConfig) -> None:
    """Build (without ``setup()``) each user step once: a constructor that fails on its
    settings fails here, on the driver, before Ray starts."""
    for step in config.steps:
        if not step.builtin:
            user_stage(step).close()


def build_stages(config: PipelineConfig, setup: bool = True) -> list[Stage]:
    """The document stages of phase 1 in the order of ``config.steps`` (switched-off ones
    left out), each ``setup()`` unless ``setup`` is False."""
    stages: list[Stage] = []
    for step in config.steps:
        if step.builtin:
            stages.extend(BUILTINS[step.use].build(config))
        else:
            stages.append(user_stage(step))
    if setup:
        for s in stages:
            s.setup()
    return stages

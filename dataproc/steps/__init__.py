"""Pipelines as data: the phase-1 step list of a pipeline YAML, resolved and built.

``spec`` reads the ``steps:`` list (built-in names or ``module:Class``), ``builtin`` is the
table of built-in steps, ``build`` turns a resolved ``PipelineConfig`` into ``Stage`` objects.
docs/stages.md, "Adding a step", shows how a user adds one.
"""

"""Benchmark decontamination: an n-gram index of evaluation sets, built once per run.

``ngrams`` turns text into hashed word n-grams (the same function for eval items and
documents); ``index`` reads the evaluation sets and writes the run's compact index; the stage
that applies it is ``dataproc.stages.decontaminate.Decontaminator``.
"""

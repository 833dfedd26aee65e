"""Quality evaluations of the pipeline's stages on labelled data (``dataproc eval``).

Each module holds one evaluation as a plain function that takes data paths and returns a
JSON-ready result dict; ``report`` turns those dicts into tables.
"""

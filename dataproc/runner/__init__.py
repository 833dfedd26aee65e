"""Running the pipeline: input planning, the three phases, and the thin Ray layer over them."""

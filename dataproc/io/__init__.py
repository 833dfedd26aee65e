"""I/O layer: file systems (local, s3://, gs://, https://), atomic writes, output files."""

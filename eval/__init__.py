"""Judges what the pipeline produced: benchmarks and retrieval evaluations. Imports ``pipeline``, never the reverse."""

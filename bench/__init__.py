"""Benchmark helpers: inputs made from fixtures, the naive baseline, and the per-core cost bound."""

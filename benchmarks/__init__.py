"""Benchmarks of wanmodels on the loopback fake Hub; run from the repo root: `python -m benchmarks.run`."""

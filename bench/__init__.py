"""Benchmarks: run from the repository root as ``python -m bench.<name>``; each prints ratios measured in one run."""

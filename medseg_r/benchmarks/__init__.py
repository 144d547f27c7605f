"""Benchmarks that print MedSeg-R beside its baselines in one run (``python -m medseg_r.benchmarks.<name>``)."""

"""Benchmarks that print MedSeg-R beside its baselines in one run (``python -m medseg_r.benchmarks.<name>``)."""

import argparse


def benchmark_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line of ``python -m medseg_r.benchmarks.<module>``: that name in its usage line
    and the whole module docstring, as written, as its description (its first paragraph alone was
    cut mid-list)."""
    return argparse.ArgumentParser(prog=f"python -m medseg_r.benchmarks.{module}",
                                   description=doc.strip(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

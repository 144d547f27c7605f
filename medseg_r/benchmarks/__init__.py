"""Benchmarks that print MedSeg-R beside its baselines in one run (``python -m medseg_r.benchmarks.<name>``)."""

import argparse


def benchmark_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line of ``python -m medseg_r.benchmarks.<module>``: that name in its usage line
    and the whole module docstring, as written, as its description (its first paragraph alone was
    cut mid-list)."""
    return argparse.ArgumentParser(prog=f"python -m medseg_r.benchmarks.{module}",
                                   description=doc.strip(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def run_benchmark(main, module: str) -> int:
    """Run a benchmark's ``main`` as a command: an input error (a missing file or checkpoint, a bad
    value found once the work starts) is one line and exit status 2, as the ``medseg-r`` commands
    say it, not a traceback."""
    import sys

    from ..backbones.weights import CheckpointError

    try:
        return main()
    except (ValueError, FileNotFoundError, NotADirectoryError, CheckpointError) as exc:
        print(f"python -m medseg_r.benchmarks.{module}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"python -m medseg_r.benchmarks.{module}: interrupted", file=sys.stderr)
        return 130

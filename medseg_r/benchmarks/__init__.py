"""Benchmarks that print MedSeg-R beside its baselines in one run (``python -m medseg_r.benchmarks.<name>``)."""

import argparse


def benchmark_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line of ``python -m medseg_r.benchmarks.<module>``: that name in its usage line
    and the whole module docstring, as written, as its description (its first paragraph alone was
    cut mid-list)."""
    return argparse.ArgumentParser(prog=f"python -m medseg_r.benchmarks.{module}",
                                   description=doc.strip(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def not_a_benchmark(module: str) -> int:
    """What ``python -m medseg_r.benchmarks.<module>`` of a library module says (exit status 2):
    that it is none, and which modules are (those that define ``main``)."""
    import os
    import sys

    here = os.path.dirname(__file__)
    names = sorted(name[:-3] for name in os.listdir(here) if name.endswith(".py") and name != "__init__.py"
                   and "\ndef main(" in open(os.path.join(here, name), encoding="utf-8").read())
    print(f"medseg_r.benchmarks.{module} is a library module, not a benchmark; the benchmarks: "
          f"{', '.join(names)}", file=sys.stderr)
    return 2


def run_benchmark(main, module: str) -> int:
    """Run a benchmark's ``main`` as a command: an input error (a missing file or checkpoint, a bad
    value found once the work starts) is one line naming the error's type and where it was raised,
    and exit status 2, as the ``medseg-r`` commands say it, not a traceback."""
    import sys

    from ..backbones.weights import CheckpointError

    try:
        return main()
    except (ValueError, FileNotFoundError, NotADirectoryError, CheckpointError) as exc:
        import os
        import traceback

        # where it was raised, so that a defect deep in a long run is not taken for bad input
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"python -m medseg_r.benchmarks.{module}: error: {exc} "
              f"({type(exc).__name__} at {os.path.basename(where.filename)}:{where.lineno})",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"python -m medseg_r.benchmarks.{module}: interrupted", file=sys.stderr)
        return 130

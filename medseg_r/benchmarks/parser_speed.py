"""How fast the report reader is: N reports parsed on one core (one Python process, no threads).

    python -m medseg_r.benchmarks.parser_speed            # 10,000 reports
    python -m medseg_r.benchmarks.parser_speed --json

The reports are the Indiana University chest X-ray reports (FINDINGS + IMPRESSION) cycled to N, when
torchxrayvision is installed; otherwise the repository's annotated test sentences. The first parse (which
compiles the vocabulary) is timed separately. Median of 3 runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from ..report import parse_report
from ..report.vocab import default_vocabulary


def corpus():
    try:
        from .iu_reports import load_iu_reports, report_text

        return "IU chest X-ray reports", [report_text(r) for r in load_iu_reports()]
    except FileNotFoundError:
        from ..report.scoring import load_annotations

        path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "report", "data", "annotated_reports.jsonl")
        return "annotated test sentences", [r["text"] for r in load_annotations(path)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of reports (default 10,000)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    name, texts = corpus()
    batch = [texts[i % len(texts)] for i in range(args.n)]
    t0 = time.perf_counter()
    default_vocabulary()
    parse_report(batch[0])
    first = time.perf_counter() - t0
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for text in batch:
            parse_report(text)
        runs.append(time.perf_counter() - t0)
    result = {"reports": args.n, "corpus": name, "seconds": round(statistics.median(runs), 3),
              "reports_per_second": round(args.n / statistics.median(runs)), "first_call_seconds": round(first, 3),
              "mean_chars": round(sum(map(len, batch)) / len(batch))}
    print(json.dumps(result) if args.json else "\n".join(f"{k:<22}{v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

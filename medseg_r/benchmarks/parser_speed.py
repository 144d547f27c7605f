"""How fast the report reader is, on one core (one Python process, no threads). Four figures:

* ``iu``: N Indiana University chest X-ray reports (FINDINGS + IMPRESSION, cycled to N; read from
  the installed torchxrayvision wheel, skipped when it is missing);
* ``350_char``: N reports of 3-6 sentences, 310-400 characters (about 350), drawn with a fixed seed
  from the repository's annotated test sentences (every domain, prose and shorthand);
* ``no_breaks``: one text of 199,000 characters without a sentence break (the annotated sentences
  joined by commas): the reader must stay linear in the length of a sentence;
* ``no_finding``: one text of 199,000 characters without a sentence break or a finding, made of the
  words that start normal-study statements ("lungs, and and lungs and ..."): the normal-statement
  patterns, which run only where no finding is, must stay linear too.

    python -m medseg_r.benchmarks.parser_speed            # 10,000 reports each
    python -m medseg_r.benchmarks.parser_speed --json

Each figure is the median of ``--runs`` runs (default 3). The first parse (which builds the
vocabulary index) is timed separately.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import time
from typing import Callable, Dict, List, Optional

from ..report import parse_report
from ..report.vocab import default_vocabulary
from ..cli.common import positive_int
from . import benchmark_parser

ANNOTATED = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "report", "data",
                         "annotated_reports.jsonl")
NO_BREAK_CHARS = 199_000


def annotated_sentences(path: str = ANNOTATED) -> List[str]:
    from ..report.scoring import load_annotations

    return [str(r["text"]) for r in load_annotations(path)]


def iu_reports() -> Optional[List[str]]:
    """The IU reports' FINDINGS + IMPRESSION texts, or ``None`` when torchxrayvision is missing."""
    try:
        from .iu_reports import load_iu_reports, report_text

        return [report_text(r) for r in load_iu_reports()]
    except FileNotFoundError:
        return None


def multi_sentence_reports(sentences: List[str], n: int, *, seed: int = 0, shortest: int = 310,
                           longest: int = 400) -> List[str]:
    """``n`` reports of 3-6 sentences of ``shortest`` to ``longest`` characters (about 350)."""
    rng = random.Random(seed)
    reports: List[str] = []
    while len(reports) < n:
        text = " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 6)))
        if shortest <= len(text) <= longest:
            reports.append(text)
    return reports


def text_without_breaks(sentences: List[str], length: int = NO_BREAK_CHARS) -> str:
    """``length`` characters of findings joined by commas, with no sentence end anywhere."""
    clauses = [s.rstrip(" .;!?").replace(".", " ").replace(";", ",").replace("?", " ")
               .replace("!", " ").replace("\n", " ") for s in sentences]
    text, i = "", 0
    while len(text) < length:
        text += clauses[i % len(clauses)] + ", "
        i += 1
    return text[:length]


def text_without_findings(length: Optional[int] = None) -> str:
    """``length`` characters (default ``NO_BREAK_CHARS``) of list-like words about the lungs, no
    sentence end and no finding: each "lungs" starts a try of every normal-statement pattern."""
    length = NO_BREAK_CHARS if length is None else length
    return ("lungs, and and lungs and " * (length // 25 + 1))[:length]


def _median_seconds(work: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _batch_figure(texts: List[str], n: int, runs: int) -> Dict[str, float]:
    batch = [texts[i % len(texts)] for i in range(n)]
    seconds = _median_seconds(lambda: [parse_report(t) for t in batch], runs)
    return {"reports": n, "seconds": round(seconds, 3), "reports_per_second": round(n / seconds),
            "mean_chars": round(sum(map(len, batch)) / len(batch))}


def measure(n: int = 10_000, runs: int = 3) -> Dict[str, object]:
    """The four figures (see the module docstring) as a dict."""
    start = time.perf_counter()
    default_vocabulary().index()
    parse_report("Warm-up: a nodule in the right upper lobe.")
    result: Dict[str, object] = {"first_call_seconds": round(time.perf_counter() - start, 3)}
    sentences = annotated_sentences()
    iu = iu_reports()
    result["iu"] = _batch_figure(iu, n, runs) if iu else "skipped: torchxrayvision is not installed"
    result["350_char"] = _batch_figure(multi_sentence_reports(sentences, n), n, runs)
    long_text = text_without_breaks(sentences)
    seconds = _median_seconds(lambda: parse_report(long_text), runs)
    result["no_breaks"] = {"chars": len(long_text), "seconds": round(seconds, 3),
                           "findings": len(parse_report(long_text).findings)}
    plain = text_without_findings()
    seconds = _median_seconds(lambda: parse_report(plain), runs)
    result["no_finding"] = {"chars": len(plain), "seconds": round(seconds, 3),
                            "findings": len(parse_report(plain).findings)}
    return result


def main(argv=None) -> int:
    parser = benchmark_parser("parser_speed", __doc__)
    parser.add_argument("-n", type=positive_int, default=10_000,
                        help="reports per batch figure (default 10,000)")
    parser.add_argument("--runs", type=positive_int, default=3,
                        help="runs per figure; the median is reported")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(args.n, args.runs)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'first call (index build)':<28}{result['first_call_seconds']} s")
    for key, label in (("iu", "IU chest X-ray reports"), ("350_char", "3-6 sentence reports")):
        figure = result[key]
        if isinstance(figure, str):
            print(f"{label:<28}{figure}")
        else:
            print(f"{label:<28}{figure['reports']:,} reports, {figure['mean_chars']} chars each: "
                  f"{figure['seconds']} s ({figure['reports_per_second']:,} reports/s)")
    for key, label in (("no_breaks", "one text, no sentence break"),
                       ("no_finding", "one text, no finding")):
        figure = result[key]
        print(f"{label:<28}{figure['chars']:,} chars: {figure['seconds']} s "
              f"({figure['findings']:,} findings)")
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "parser_speed"))

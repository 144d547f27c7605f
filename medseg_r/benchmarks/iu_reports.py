"""The report reader on real reports nobody here wrote: the 3,955 Indiana University chest X-ray reports
(Demner-Fushman et al., 2016; licence CC BY-NC-ND 4.0) that ship inside ``torchxrayvision``'s wheel as
``torchxrayvision/data/NLMCXR_reports.tgz``. They are read from the installed package at run time and
never copied into this repository.

    python -m medseg_r.benchmarks.iu_reports                 # statistics and timing
    python -m medseg_r.benchmarks.iu_reports --sample 50     # 50 random sentences to check by hand
    python -m medseg_r.benchmarks.iu_reports --labels tests/report/data/iu_labels.jsonl

The labels file holds hand labels of IU sentences by position only (report id, character offsets in
FINDINGS + IMPRESSION, and a SHA-1 prefix of the sentence to detect a changed archive): the text
itself is read from the installed wheel, so no report text is stored in this repository.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import tarfile
import time
import xml.etree.ElementTree as ET
from typing import Dict, List

from ..cli.common import non_negative_int, seed_int
from ..report import parse_report, split_sentences
from ..report.format import summarise
from . import benchmark_parser

SECTIONS = ("FINDINGS", "IMPRESSION")


def iu_archive_path() -> str:
    """Path of ``NLMCXR_reports.tgz`` inside the installed torchxrayvision (without importing it)."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("torchxrayvision is not installed (pip install torchxrayvision)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "NLMCXR_reports.tgz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing from the installed torchxrayvision")
    return path


def load_iu_reports(path: str | None = None) -> List[Dict[str, str]]:
    """Every report as ``{"id", "FINDINGS", "IMPRESSION"}`` (missing sections are empty strings)."""
    reports = []
    with tarfile.open(path or iu_archive_path(), "r:gz") as archive:
        for member in archive:
            if not member.isfile() or not member.name.endswith(".xml"):
                continue
            root = ET.fromstring(archive.extractfile(member).read())
            entry = {"id": os.path.basename(member.name)[:-4], **{s: "" for s in SECTIONS}}
            for node in root.iter("AbstractText"):
                label = node.get("Label", "")
                if label in SECTIONS:
                    entry[label] = (node.text or "").strip()
            reports.append(entry)
    return sorted(reports, key=lambda r: int(r["id"]) if r["id"].isdigit() else 0)


def report_text(entry: Dict[str, str]) -> str:
    return " ".join(entry[s] for s in SECTIONS if entry[s])


def statistics(reports: List[Dict[str, str]]) -> Dict[str, float]:
    """Parse every report; count sentences with >= 1 finding, the share of findings negated, and the
    reports (with any text) that ask for an empty mask by a normal-study statement alone or from
    which nothing is read (neither a finding nor such a statement: a structured model boxes their
    images from the image alone, :func:`medseg_r.model.encoding.read_as_nothing`)."""
    sentences = with_finding = findings = negated = uncertain = normal_only = nothing = 0
    start = time.perf_counter()
    for entry in reports:
        text = report_text(entry)
        report = parse_report(text)
        spans = split_sentences(text)
        sentences += len(spans)
        starts = {min((s for s, e in f.spans["target"] or [(0, 0)])) for f in report.findings}
        with_finding += sum(any(s <= pos < e for pos in starts) for s, e in spans)
        findings += len(report.findings)
        negated += sum(f.negated for f in report.findings)
        uncertain += sum(f.uncertain for f in report.findings)
        if text.strip():
            normal_only += not report.findings and bool(report.normal_statements)
            nothing += report.reads_nothing
    seconds = time.perf_counter() - start
    return {"reports": len(reports), "sentences": sentences, "seconds": round(seconds, 3),
            "sentences_with_finding_pct": round(100 * with_finding / max(sentences, 1), 1),
            "findings": findings, "negated_pct": round(100 * negated / max(findings, 1), 1),
            "uncertain_pct": round(100 * uncertain / max(findings, 1), 1),
            "reports_normal_statements_only": normal_only, "reports_read_as_nothing": nothing}


def sample_sentences(reports: List[Dict[str, str]], k: int, seed: int = 0) -> List[str]:
    sentences = [report_text(e)[s:t].strip() for e in reports for s, t in split_sentences(report_text(e))]
    sentences = [s for s in sentences if s]
    return random.Random(seed).sample(sentences, min(k, len(sentences)))


def labelled_sentences(path: str, *,
                       reports: List[Dict[str, str]] | None = None) -> List[Dict[str, object]]:
    """The rows of an IU labels file with their sentence text filled in from the archive, ready for
    :func:`medseg_r.report.scoring.score_reports`.

    Raises:
        ValueError: a row names a report that is missing, or its text no longer matches the hash.
    """
    reports = reports if reports is not None else load_iu_reports()
    texts = {e["id"]: report_text(e) for e in reports}
    rows = []
    with open(path, "r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["report"] not in texts:
                raise ValueError(f"{path}:{number}: no IU report {row['report']!r}")
            text = texts[row["report"]][row["start"]:row["end"]]
            if hashlib.sha1(text.encode("utf-8")).hexdigest()[:len(row["sha1"])] != row["sha1"]:
                raise ValueError(f"{path}:{number}: report {row['report']} "
                                 f"[{row['start']}:{row['end']}] is not the labelled sentence "
                                 "(another archive version?)")
            rows.append({"text": text, "findings": row["findings"],
                         "id": f"{row['report']}:{row['start']}"})
    return rows


def main(argv=None) -> int:
    parser = benchmark_parser("iu_reports", __doc__)
    parser.add_argument("--sample", type=non_negative_int, default=0,
                        help="also print N random sentences with their findings (default 0)")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="seed of the --sample draw (default 0)")
    parser.add_argument("--labels",
                        help="score the reader on a labels file (see the module docstring)")
    args = parser.parse_args(argv)
    if args.labels and not os.path.isfile(args.labels):
        parser.error(f"--labels: file not found: {args.labels}")
    reports = load_iu_reports()
    if args.labels:
        from ..report.scoring import score_reports

        try:
            labelled = labelled_sentences(args.labels, reports=reports)
        except (ValueError, KeyError, TypeError) as exc:  # not JSON lines, a row without its keys
            parser.error(f"--labels {args.labels}: not a labels file as the module docstring "
                         f"describes it ({type(exc).__name__}: {exc})")
        print(score_reports(labelled).table())
        return 0
    stats = statistics(reports)
    for key, value in stats.items():
        print(f"{key:<32}{value}")
    for i, sentence in enumerate(sample_sentences(reports, args.sample, args.seed), 1):
        print(f"\n[{i}] " + summarise(parse_report(sentence), colour=False))
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "iu_reports"))

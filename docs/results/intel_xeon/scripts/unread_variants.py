"""How MedSeg-R should box a report read as nothing, on the validation split with every report
replaced by a sentence the reader reads nothing from (unread_reports.md, "Choosing the reading"):
positive cases "See the attached images for the area of concern.", lesion-free ones "Comparison with
the prior study was made." (/work/bench_val/unread, written by unread_val.py).

    python unread_variants.py VARIANT [NAME]

VARIANT: ``regions`` (this version: the localiser reads the empty report, the regions of extent
above threshold are boxed), ``generic_regions`` (the localiser reads the report as one positive
finding with nothing known of it, the same regions are boxed), ``generic_peak`` (read so, and boxed
as such a finding: the peak of where, with the hedge). NAME: a shipped file (default
litemedsam_phantom). Features from the benchmark's cache (/work/bench/feature_cache)."""
import sys

import torch

import medseg_r.model.encoding as encoding
import medseg_r.model.inputs as inputs
import medseg_r.report.transform as transform
from medseg_r.data.readers import read_dataset
from medseg_r.engine.evaluate import evaluate
from medseg_r.model.feature_cache import FeatureCache
from medseg_r.model.shipped import load_shipped
from medseg_r.report.schema import Finding, Report

variant = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else "litemedsam_phantom"
GENERIC = set()  # ids of the substituted reports

if variant in ("generic_regions", "generic_peak"):
    real_as_reports, real_mirror, real_nothing = (inputs.as_reports, transform.mirrored_report,
                                                  encoding.read_as_nothing)

    def as_reports(reports, n):
        out = []
        for r in real_as_reports(reports, n):
            if not r.findings:
                r = Report(text=r.text, findings=[Finding(target="lesion")])
                GENERIC.add(id(r))
            out.append(r)
        return out

    def mirrored_report(report):  # a finding without a side is its own mirror
        return report if id(report) in GENERIC else real_mirror(report)

    def read_as_nothing(model, reports):
        if variant == "generic_peak":
            return real_nothing(model, reports)
        return [not model.training and (id(r) in GENERIC or not r.findings) for r in reports]

    inputs.as_reports, transform.mirrored_report = as_reports, mirrored_report
    encoding.read_as_nothing = read_as_nothing
elif variant != "regions":
    raise SystemExit(f"unknown variant {variant}")

model = load_shipped(name)[0]
model.feature_cache = FeatureCache("/work/bench/feature_cache")
records, root = read_dataset("/work/bench_val/unread", split="val")
with torch.no_grad():
    summary = evaluate(model, records, root=root, size=256)
o = summary["overall"]
print(f"| {name} | {variant} | {o['dice']:.3f} | {o['hd95']:.1f} | {summary['negative_fp_rate']:.3f} | "
      + " | ".join(f"{summary['subsets'][s]['dice']:.3f}" for s in
                   ("small", "by_location", "by_texture", "by_shape")) + " |")

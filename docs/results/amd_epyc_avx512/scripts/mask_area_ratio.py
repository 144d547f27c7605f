"""Diagnostic: predicted mask area against reference area, by reference size, from a scored run.

Exploratory (stop 45), not part of the package; reads the ``eval/cases.csv`` that the accuracy
benchmark writes for a run (here ``DIR/runs/medseg_r_attr_seed1``, scored before ``box_fill``):
    python mask_area_ratio.py DIR/runs/medseg_r_attr_seed1/eval/cases.csv
Prints, per band of reference area, the cases, their mean Dice, the share with every described
lesion found and the median of predicted/reference area; then the same for the cases where every
described lesion was found.
"""
import sys

import pandas as pd

cases = pd.read_csv(sys.argv[1])
cases = cases[cases.truth_px > 0].copy()
cases["ratio"] = cases.pred_px / cases.truth_px
cases["all_found"] = cases.lesions_found == cases.lesions
cases["band"] = pd.cut(cases.truth_px, [0, 50, 150, 400, 800, 5000])
print(cases.groupby("band", observed=False).agg(n=("dice", "size"), dice=("dice", "mean"),
                                                 found=("all_found", "mean"), median_ratio=("ratio", "median")))
found = cases[cases.all_found]
print(found.groupby("band", observed=False).agg(n=("dice", "size"), dice=("dice", "mean"),
                                                 median_ratio=("ratio", "median")))

"""Structured priors -> token groups ``T_pos``, ``T_tex``, ``T_shape`` and a meta token per finding.

Each token is the sum of learned embeddings of the canonical codes (PRIORS.md) and a projection of the
text encoder's embedding of the words that gave the prior (the finding's spans), so synonyms the
vocabulary maps to one code still carry their own nuance, and codes unknown to the model still arrive.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

from ..report.schema import IMAGE_REGIONS, ORGANS, SHAPE_CODES, SIDES, SIZE_CLASSES, TARGETS, TEXTURE_CODES, ZONES
from ..report.schema import Finding, Report

GROUPS = ("pos", "tex", "shape", "meta")
_SPAN_OF = {"pos": "location", "tex": "texture", "shape": "shape", "meta": "target"}


def _index(values: Sequence[str]) -> Dict[str, int]:
    # 0 is reserved for "absent", the last row for "other" (codes added by user vocabularies).
    return {v: i + 1 for i, v in enumerate(values)}


class CodeTable(nn.Module):
    """Embeddings for one code vocabulary, with rows for absent (0) and unknown codes (last)."""

    def __init__(self, values: Sequence[str], dim: int) -> None:
        super().__init__()
        self.index = _index(values)
        self.embed = nn.Embedding(len(values) + 2, dim)
        nn.init.normal_(self.embed.weight, std=0.02)

    def ids(self, code) -> int:
        if code is None:
            return 0
        return self.index.get(code, len(self.index) + 1)


class PriorEncoder(nn.Module):
    """Encode reports into per-finding token groups.

    Args:
        dim: token width ``d``.
        text_encoder: module mapping N phrases to ``[N, text_dim]`` (see :mod:`.text_encoders`).
        max_findings: findings kept per report (the first ones, positive findings first).

    Returns (from ``forward``): a dict with ``tokens`` ``[B, F, 4, d]`` (groups pos, tex, shape, meta),
    ``valid`` ``[B, F]`` (bool), ``positive`` ``[B, F]`` (valid and not negated).
    """

    def __init__(self, *, dim: int, text_encoder: nn.Module, max_findings: int = 4) -> None:
        super().__init__()
        if max_findings < 1:
            raise ValueError("max_findings must be >= 1")
        self.dim = dim
        self.max_findings = max_findings
        self.text_encoder = text_encoder
        self.text_proj = nn.Linear(text_encoder.dim, dim)
        self.side = CodeTable(SIDES, dim)
        self.zone = CodeTable(ZONES, dim)
        self.organ = CodeTable(ORGANS, dim)
        self.region = CodeTable(IMAGE_REGIONS, dim)
        self.texture = CodeTable(TEXTURE_CODES, dim)
        self.shape = CodeTable(SHAPE_CODES, dim)
        self.size_class = CodeTable(SIZE_CLASSES, dim)
        self.target = CodeTable(TARGETS, dim)
        self.count = nn.Embedding(6, dim)  # unknown, 1, 2, 3, 4, 5+
        self.flags = nn.Embedding(4, dim)  # none, negated, uncertain, no-finding
        self.size_mm = nn.Linear(1, dim)
        self.group_type = nn.Embedding(len(GROUPS), dim)
        self.slot = nn.Embedding(max_findings, dim)
        for emb in (self.count, self.flags, self.group_type, self.slot):
            nn.init.normal_(emb.weight, std=0.02)

    def select(self, report: Report) -> List[Finding]:
        """Positive findings first, then negated ones, at most ``max_findings``."""
        ordered = report.positive_findings + [f for f in report.findings if f.negated]
        return ordered[: self.max_findings]

    def forward(self, reports: Sequence[Report]) -> Dict[str, torch.Tensor]:
        device = self.slot.weight.device
        B, F = len(reports), self.max_findings
        codes = {k: torch.zeros(B, F, dtype=torch.long) for k in
                 ("side", "organ", "region", "size_class", "target", "count", "flags")}
        multi = {k: torch.zeros(B, F, n + 2) for k, n in
                 (("zone", len(ZONES)), ("texture", len(TEXTURE_CODES)), ("shape", len(SHAPE_CODES)))}
        size = torch.zeros(B, F, 1)
        valid = torch.zeros(B, F, dtype=torch.bool)
        positive = torch.zeros(B, F, dtype=torch.bool)
        phrases: List[str] = []
        for b, report in enumerate(reports):
            findings = self.select(report)
            if not findings:  # keep one slot so attention never sees an all-masked row
                valid[b, 0] = True
                codes["flags"][b, 0] = 3
                phrases += [""] * (F * 4)
                continue
            for i, f in enumerate(findings):
                valid[b, i] = True
                positive[b, i] = not f.negated
                loc = f.location
                codes["side"][b, i] = self.side.ids(loc.side)
                codes["organ"][b, i] = self.organ.ids(loc.organ)
                codes["region"][b, i] = self.region.ids(loc.image_region)
                codes["size_class"][b, i] = self.size_class.ids(f.size_class)
                codes["target"][b, i] = self.target.ids(f.target)
                codes["count"][b, i] = 0 if f.count is None else min(max(int(f.count), 1), 5)
                codes["flags"][b, i] = 1 if f.negated else 2 if f.uncertain else 0
                for table, key, values in ((self.zone, "zone", loc.zones), (self.texture, "texture", f.texture),
                                           (self.shape, "shape", f.shape)):
                    for v in values:
                        multi[key][b, i, table.ids(v)] = 1.0
                if f.size_mm:
                    size[b, i, 0] = math.log1p(float(f.size_mm)) / math.log(100.0)
            for i in range(F):
                if i < len(findings):
                    f = findings[i]
                    phrases += [_phrase(report, f, g) for g in GROUPS]
                else:
                    phrases += [""] * 4
        codes = {k: v.to(device) for k, v in codes.items()}
        multi = {k: v.to(device) for k, v in multi.items()}
        text = self.text_proj(self.text_encoder(phrases)).view(B, F, 4, self.dim)
        pos = (self.side.embed(codes["side"]) + self.organ.embed(codes["organ"]) + self.region.embed(codes["region"])
               + multi["zone"] @ self.zone.embed.weight)
        tex = multi["texture"] @ self.texture.embed.weight
        shp = (multi["shape"] @ self.shape.embed.weight + self.size_class.embed(codes["size_class"])
               + self.size_mm(size.to(device)))
        meta = self.target.embed(codes["target"]) + self.count(codes["count"]) + self.flags(codes["flags"])
        tokens = torch.stack([pos, tex, shp, meta], dim=2) + text
        tokens = tokens + self.group_type.weight[None, None] + self.slot.weight[None, :, None]
        return {"tokens": tokens, "valid": valid.to(device), "positive": positive.to(device)}


    def encode_text(self, texts: Sequence[str]) -> Dict[str, torch.Tensor]:
        """The text-only source of the capacity-matched baselines: each report's whole text as one
        embedding, given to every group of a single finding slot (no parser, no codes). An empty text
        gives a constant."""
        device = self.slot.weight.device
        B, F = len(texts), self.max_findings
        text = self.text_proj(self.text_encoder(list(texts)))  # [B, d]
        tokens = torch.zeros(B, F, len(GROUPS), self.dim, device=device, dtype=text.dtype)
        tokens[:, 0] = text[:, None, :]
        tokens = tokens + self.group_type.weight[None, None] + self.slot.weight[None, :, None]
        valid = torch.zeros(B, F, dtype=torch.bool, device=device)
        valid[:, 0] = True
        return {"tokens": tokens, "valid": valid, "positive": valid.clone()}


def _phrase(report: Report, finding: Finding, group: str) -> str:
    text = finding.phrase(report.text, _SPAN_OF[group])
    if group == "meta" and not text:
        text = finding.target or ""
    return text

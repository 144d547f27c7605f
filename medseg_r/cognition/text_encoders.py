"""Pluggable text encoders for prior phrases: a weight-free hashed n-gram encoder, or a local HF model."""
from __future__ import annotations

import re
import zlib
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

_WORD = re.compile(r"[a-z0-9]+")


class HashedNgramEncoder(nn.Module):
    """Bag of hashed word unigrams/bigrams and character trigrams -> learned embedding (mean).

    Needs no downloaded weights; trained with the rest of MedSeg-R. Hashing is CRC32, so it is stable
    across processes (unlike Python's ``hash``).

    Args:
        dim: output size.
        buckets: number of hash buckets (embedding rows).
    """

    def __init__(self, *, dim: int = 96, buckets: int = 4096) -> None:
        super().__init__()
        if dim <= 0 or buckets <= 0:
            raise ValueError("dim and buckets must be positive")
        self.dim = dim
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")
        nn.init.normal_(self.bag.weight, std=0.1)
        self._cache: Dict[str, List[int]] = {}

    def ids(self, phrase: str) -> List[int]:
        cached = self._cache.get(phrase)
        if cached is not None:
            return cached
        words = _WORD.findall(phrase.lower())
        grams = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in zip(words, words[1:])]
        for w in words:
            padded = f"#{w}#"
            grams += [f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2)]
        out = [zlib.crc32(g.encode()) % self.buckets for g in grams]
        if len(self._cache) < 100_000:
            self._cache[phrase] = out
        return out

    def forward(self, phrases: Sequence[str]) -> torch.Tensor:
        """``phrases``: N strings -> ``[N, dim]``; an empty phrase gives a zero vector."""
        device = self.bag.weight.device
        ids, offsets, empty = [], [], []
        for i, phrase in enumerate(phrases):
            grams = self.ids(phrase)
            offsets.append(len(ids))
            empty.append(not grams)
            ids.extend(grams)
        if not ids:
            return torch.zeros(len(phrases), self.dim, device=device)
        out = self.bag(torch.tensor(ids, device=device), torch.tensor(offsets, device=device))
        mask = torch.tensor(empty, device=device).unsqueeze(1)
        return out.masked_fill(mask, 0.0)


class HFTextEncoder(nn.Module):
    """A frozen local Hugging Face / sentence-transformers model (mean pooled), loaded offline.

    Args:
        path: a local model folder (e.g. a sentence-transformers checkpoint). Nothing is downloaded.
        max_length: tokenizer truncation length.
    """

    always_frozen = True  # MedSegR.set_freeze never un-freezes it

    def __init__(self, path: str, *, max_length: int = 64) -> None:
        super().__init__()
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ValueError("text_encoder=<path> needs the 'transformers' package: pip install 'medseg-r[hf]'") from None
        import os

        if not os.path.isdir(path):
            raise ValueError(f"text_encoder {path!r} is neither 'hashed' (the built-in encoder) nor a "
                             f"folder holding a Hugging Face model")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ValueError(f"text_encoder folder {path} holds no Hugging Face model (no config.json): "
                             f"give a folder saved by save_pretrained, or 'hashed' (the built-in encoder)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        except (OSError, ValueError) as exc:  # a folder without tokenizer files, weights of no model
            raise ValueError(f"text_encoder folder {path} could not be loaded as a Hugging Face model "
                             f"({' '.join(str(exc).split())[:300]}); or use 'hashed' (the built-in "
                             f"encoder)") from None
        self.model.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.max_length = max_length
        self.path = path

    @torch.no_grad()
    def forward(self, phrases: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(list(phrases), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        empty = torch.tensor([not p.strip() for p in phrases], device=device).unsqueeze(1)
        return pooled.masked_fill(empty, 0.0)


def build_text_encoder(spec: str = "hashed", **kwargs) -> nn.Module:
    """``"hashed"`` (default, no weights needed) or a path to a local HF / sentence-transformers model."""
    if spec == "hashed":
        return HashedNgramEncoder(**kwargs)
    return HFTextEncoder(spec)

"""Export a trained MedSeg-R for deployment (ONNX or TorchScript), with a parity check against PyTorch.

What is exported is the tensor graph: prior fusion -> modulated image encoder -> mask decoder. Report
parsing and the prior encoder (text -> codes and hashed n-grams) stay in Python (:func:`prepare_inputs`),
as do resizing/padding the image to the canvas and scaling the low-resolution logits back
(:func:`medseg_r.model.geometry.from_canvas`). Batch size 1; the canvas is ``img_size`` square.

Graph inputs (names in the exported file), by prior mode:

* models with prior modules (MedSeg-R, and the capacity-matched ``text_token``/``none`` baselines):
  ``canvas [1, 3, S, S]``, ``tokens [1, F, G, d]``, ``valid [1, F]``, ``positive [1, F]`` and, with
  the location map, ``location_map_{h}x{w} [1, 1, h, w]`` for each grid the model uses (flat 0.5 maps
  for the baselines, as in training: :mod:`medseg_r.model.conditioning`);
* ``text_token`` without matched capacity: ``canvas``, ``text_tokens [1, 1, E]``;
* a bare ``none`` baseline: ``canvas``.

Outputs: ``low_res_logits [1, 1, s, s]`` and ``iou [1, 1]``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .io import atomic_write
from .model.conditioning import location_render
from .model.geometry import Frame, from_canvas, to_canvas
from .io.images import image_to_tensor
from .model.inputs import as_reports
from .model.medseg_r import MedSegR

FORMATS = ("onnx", "torchscript")


def check_exportable(options: Dict[str, object]) -> None:
    """A ``ValueError`` for model options whose model cannot be traced (checked before a model is
    loaded where its file records them: :func:`~medseg_r.model.shipped.stored_options`)."""
    if options.get("report_box"):
        raise ValueError("a model with report_box=true cannot be exported yet: its boxes come from the "
                         "connected regions of the head's map (data-dependent), which ONNX and "
                         "TorchScript traces cannot follow; export a model trained without report_box")
    if options.get("decoder_prior") == "extra_token":
        raise ValueError("decoder_prior='extra_token' chooses tokens by data-dependent indexing and cannot be "
                         "exported; train with the default decoder_prior='both'")


class ExportGraph(nn.Module):
    """The traceable part of a :class:`MedSegR` with fixed location-map grid sizes."""

    def __init__(self, model: MedSegR, map_sizes: List[Tuple[int, int]]) -> None:
        super().__init__()
        check_exportable(model.options)
        self.model = model
        self.map_sizes = list(map_sizes)
        self.frame = Frame(height=model.img_size, width=model.img_size, size=model.img_size)

    @property
    def mode(self) -> str:
        """``tokens`` (prior modules), ``text_token`` (text prompt only) or ``none``."""
        if self.model.prior_encoder is not None:
            return "tokens"
        return "text_token" if self.model.text_prompt is not None else "none"

    def input_names(self) -> List[str]:
        if self.mode == "tokens":
            return ["canvas", "tokens", "valid", "positive"] + [f"location_map_{h}x{w}" for h, w in self.map_sizes]
        if self.mode == "text_token":
            return ["canvas", "text_tokens"]
        return ["canvas"]

    def forward(self, canvas: torch.Tensor, *rest: torch.Tensor):
        model, priors, render, text_tokens, maps = self.model, None, None, None, {}
        if self.mode == "tokens":
            tokens, valid, positive, *map_list = rest
            priors = model.fusion({"tokens": tokens, "valid": valid, "positive": positive})
            maps = dict(zip(self.map_sizes, map_list))
            if maps:
                def render(size):
                    return maps[tuple(int(v) for v in size)]
        elif self.mode == "text_token":
            (text_tokens,) = rest
        embeddings, _ = model.encode_image(canvas, priors, render)
        ctx_map = maps.get(tuple(int(v) for v in embeddings.shape[-2:])) if maps else None
        return model.decode(embeddings, frame=self.frame, priors=priors, location_map=ctx_map,
                            text_tokens=text_tokens)


def _map_sizes(model: MedSegR, image: torch.Tensor, report) -> List[Tuple[int, int]]:
    """The grid sizes at which the model asks for location maps (recorded on one encoder pass)."""
    (parsed,) = as_reports([report], 1)
    frame = Frame(height=image.shape[-2], width=image.shape[-1], size=model.img_size)
    render = location_render(model, [parsed], frame, image.device)
    if render is None:
        return []
    canvas = to_canvas(image, frame, normalize=model.normalize, pixel_mean=getattr(model.sam, "pixel_mean", None),
                       pixel_std=getattr(model.sam, "pixel_std", None))
    sizes: List[Tuple[int, int]] = []

    def recording(size):
        if tuple(size) not in sizes:
            sizes.append(tuple(size))
        return render(size)

    with torch.no_grad():
        embeddings, _ = model.encode_image(canvas, model.encode_priors([parsed]), recording)
    recording(tuple(embeddings.shape[-2:]))  # the decoder's dense prompt reads the map at the embedding grid
    return sizes


def prepare_inputs(model: MedSegR, image: np.ndarray, report, map_sizes: List[Tuple[int, int]]):
    """Python side of the exported graph: ``(inputs tuple, frame)`` for one image and report."""
    tensor = image_to_tensor(image)
    frame = Frame(height=tensor.shape[-2], width=tensor.shape[-1], size=model.img_size)
    canvas = to_canvas(tensor, frame, normalize=model.normalize, pixel_mean=getattr(model.sam, "pixel_mean", None),
                       pixel_std=getattr(model.sam, "pixel_std", None))
    (parsed,) = as_reports([report], 1)
    with torch.no_grad():
        if model.prior_encoder is not None:
            source = model.options.get("priors", "structured")
            if source == "structured":
                enc = model.prior_encoder([parsed])
            else:  # capacity-matched baselines: the report text, or an empty text for ``none``
                enc = model.prior_encoder.encode_text([parsed.text if source == "text_token" else ""])
            render = location_render(model, [parsed], frame, canvas.device)
            maps = [render(s) for s in map_sizes] if render is not None else []
            return (canvas, enc["tokens"], enc["valid"], enc["positive"], *maps), frame
        if model.text_prompt is not None:
            return (canvas, model.text_prompt([parsed.text])), frame
    return (canvas,), frame


@contextlib.contextmanager
def _quiet_torchscript():
    """Silence what ``torch.jit`` says on every use here. The trace fixes shapes (batch 1, the img_size
    canvas, the location-map sizes), which is what the exported graph promises; the tracer warns about each
    shape-dependent branch of SAM's code. Values (image, priors) stay inputs: the parity check and the tests
    run the file on other images and reports. PyTorch also deprecates TorchScript (README)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=r".*torch\.jit\.(trace|trace_method|save|load)` is deprecated.*")
        yield


def _run_exported(path: str, fmt: str, inputs, names: List[str]) -> torch.Tensor:
    if fmt == "torchscript":
        with _quiet_torchscript():
            loaded = torch.jit.load(path)
        with torch.no_grad():
            return loaded(*inputs)[0]
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {n: t.numpy() for n, t in zip(names, inputs)}
    return torch.from_numpy(session.run(["low_res_logits"], feed)[0])


class ParityError(ValueError):
    """The exported model differs from PyTorch by more than the tolerance (nothing was written)."""

    def __init__(self, diff: float, agreement: float, tolerance: float) -> None:
        super().__init__(f"exported model differs from PyTorch by {diff:.2e} (more than {tolerance}); "
                         f"nothing written")
        self.diff, self.agreement = diff, agreement


def export_model(model: MedSegR, path: str, *, fmt: str, image: np.ndarray, report: str,
                 opset: int = 18, tolerance: Optional[float] = None) -> Dict[str, object]:
    """Write ``model`` to ``path`` (``fmt`` ``onnx`` | ``torchscript``) and a ``path + '.json'`` sidecar; run
    the exported file on ``image``/``report`` and compare with PyTorch. Returns the sidecar dict with
    ``max_abs_diff`` (logits at input size) and ``mask_agreement`` (fraction of pixels on the same side of
    0.5). ``tolerance``: a larger ``max_abs_diff`` raises :class:`ParityError` before ``path`` is
    written (an earlier file there is left as it was)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    model = model.eval().cpu()
    tensor = image_to_tensor(image)
    sizes = _map_sizes(model, tensor, report)
    graph = ExportGraph(model, sizes).eval()
    inputs, frame = prepare_inputs(model, image, report, sizes)
    names = graph.input_names()
    with torch.no_grad():
        reference = model(tensor, [report])["masks"]
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    with atomic_write(path, suffix=suffix) as tmp:
        with torch.no_grad():
            if fmt == "torchscript":
                with _quiet_torchscript():
                    traced = torch.jit.trace(graph, inputs, check_trace=False)
                    torch.jit.save(traced, tmp)
            else:
                # The fused "fast path" kernel of nn.TransformerEncoderLayer has no ONNX form: trace the plain ops.
                fastpath = torch.backends.mha.get_fastpath_enabled()
                torch.backends.mha.set_fastpath_enabled(False)
                try:
                    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                        # torch.export notes the diagnostics attributes (last_attention ...) the modules keep
                        warnings.simplefilter("ignore")
                        torch.onnx.export(graph, inputs, tmp, input_names=names,
                                          output_names=["low_res_logits", "iou"], opset_version=opset, dynamo=True,
                                          external_data=False)
                finally:
                    torch.backends.mha.set_fastpath_enabled(fastpath)
        low_res = _run_exported(tmp, fmt, inputs, names)
        exported = from_canvas(low_res.float(), frame)
        diff = float((exported - reference).abs().max())
        agreement = float(((exported > 0) == (reference > 0)).float().mean())
        if tolerance is not None and not diff <= tolerance:
            raise ParityError(diff, agreement, tolerance)  # the temporary file goes, path stays
    sidecar = {"format": fmt, "file": os.path.basename(path), "backbone": model.backbone_name,
               "img_size": model.img_size, "normalize": model.normalize, "options": dict(model.options),
               "inputs": {n: list(t.shape) for n, t in zip(names, inputs)}, "location_map_sizes": sizes,
               "outputs": ["low_res_logits", "iou"], "max_abs_diff": diff, "mask_agreement": agreement,
               "checked_on": {"image_shape": list(np.asarray(image).shape), "report": report}}
    with atomic_write(path + ".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(sidecar, handle, indent=2)
    return sidecar


def export_checkpoint(checkpoint: str, out: str, *, fmt: str, image: Optional[np.ndarray] = None,
                      report: Optional[str] = None, tolerance: Optional[float] = None) -> Dict[str, object]:
    """Load a MedSeg-R checkpoint (or shipped weights, by file or name) and export it; the parity
    check uses ``image``/``report`` or the bundled chest-like example."""
    from .example import EXAMPLE_REPORT, chest_like_image
    from .model.shipped import load_any, stored_options

    check_exportable(stored_options(checkpoint) or {})  # before a model of seconds is loaded
    model, _ = load_any(checkpoint)
    if image is None:
        image, _ = chest_like_image()
    return export_model(model, out, fmt=fmt, image=image, report=report or EXAMPLE_REPORT,
                        tolerance=tolerance)

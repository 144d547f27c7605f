import json
import os

import numpy as np
import pytest
import torch

from medseg_r import build_model
from medseg_r.checkpoint import save_model
from medseg_r.cli import main
from medseg_r.example import chest_like_image
from medseg_r.export import ExportGraph, export_model, prepare_inputs


def _trained_like(**options):
    """A tiny model whose zero-init gates are opened, so the priors change the output."""
    torch.manual_seed(0)
    model = build_model("sam_tiny", **options)
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.5)
    return model


# ONNX export of a random ViT takes ~40 s on a 2-core CPU: run with the slow set.
@pytest.mark.parametrize("fmt", ["torchscript", pytest.param("onnx", marks=pytest.mark.slow)])
@pytest.mark.filterwarnings("ignore:.*torch.jit.load. is deprecated:FutureWarning")  # PyTorch deprecates TorchScript
def test_export_matches_pytorch_on_another_report(tmp_path, fmt):
    """Export on one report, then run the exported file on a different report and image: the graph takes
    the priors as inputs, so it must still match PyTorch."""
    model = _trained_like().eval()
    image, _ = chest_like_image()
    path = str(tmp_path / f"m.{fmt}")
    result = export_model(model, path, fmt=fmt, image=image, report="Nodule in the right upper lobe.")
    assert result["max_abs_diff"] < 1e-4 and result["mask_agreement"] == 1.0
    assert json.loads(open(path + ".json").read())["inputs"]["canvas"] == [1, 3, 256, 256]

    other = np.ascontiguousarray(image[::-1])
    report = "Spiculated mass in the left lower lobe."
    inputs, frame = prepare_inputs(model, other, report, [tuple(s) for s in result["location_map_sizes"]])
    if fmt == "torchscript":
        with torch.no_grad():
            low = torch.jit.load(path)(*inputs)[0]
    else:
        import onnxruntime as ort

        names = ExportGraph(model, result["location_map_sizes"]).input_names()
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        low = torch.from_numpy(session.run(["low_res_logits"], {n: t.numpy() for n, t in zip(names, inputs)})[0])
    from medseg_r.model.geometry import from_canvas
    from medseg_r.io import image_to_tensor

    with torch.no_grad():
        reference = model(image_to_tensor(other), [report])["masks"]
    assert float((from_canvas(low, frame) - reference).abs().max()) < 1e-4


def test_extra_token_mode_is_refused_clearly():
    with pytest.raises(ValueError, match="extra_token"):
        ExportGraph(build_model("sam_tiny", decoder_prior="extra_token"), [])


def test_export_cli_reports_parity_and_errors(tmp_path, capsys):
    ckpt = tmp_path / "model.ckpt"
    save_model(_trained_like(priors="none"), str(ckpt))
    assert main(["export", "--checkpoint", str(ckpt), "--format", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "max |logit diff|" in out and (tmp_path / "model.torchscript.pt").is_file()
    assert (tmp_path / "model.torchscript.pt.json").is_file()
    assert main(["export", "--checkpoint", str(tmp_path / "missing.ckpt"), "--format", "onnx"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_export_never_replaces_its_checkpoint_nor_keeps_a_failed_export(tmp_path, capsys):
    pt = tmp_path / "model.pt"  # a checkpoint named .pt: the export's default name must not be it
    save_model(_trained_like(priors="none"), str(pt))
    before = pt.read_bytes()
    assert main(["export", "--checkpoint", str(pt), "--format", "torchscript", "--out", str(pt)]) == 2
    assert "is the checkpoint itself" in capsys.readouterr().err and pt.read_bytes() == before
    assert main(["export", "--checkpoint", str(pt), "--format", "torchscript", "--tolerance", "-1"]) == 2


def test_a_failed_parity_check_writes_nothing_and_keeps_earlier_files(tmp_path, capsys, monkeypatch):
    import medseg_r.export as export

    ckpt, out = tmp_path / "model.ckpt", tmp_path / "model.torchscript.pt"
    save_model(_trained_like(priors="none"), str(ckpt))
    assert main(["export", "--checkpoint", str(ckpt), "--format", "torchscript"]) == 0
    before = out.read_bytes(), (tmp_path / "model.torchscript.pt.json").read_bytes()
    real = export._run_exported
    monkeypatch.setattr(export, "_run_exported", lambda *args: real(*args) + 1.0)  # an export that is off
    assert main(["export", "--checkpoint", str(ckpt), "--format", "torchscript"]) == 1
    captured = capsys.readouterr()
    assert "max |logit diff| 1.00e+00" in captured.out and "nothing written" in captured.err
    assert (out.read_bytes(), (tmp_path / "model.torchscript.pt.json").read_bytes()) == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".partial-")]


def test_export_refuses_what_it_would_replace_or_cannot_write(tmp_path, capsys):
    ckpt = tmp_path / "model.ckpt"
    save_model(_trained_like(priors="none"), str(ckpt))
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "folder").mkdir()
    for out, fmt, message in [("notes.txt", "torchscript", "exists and is not an earlier export"),
                              ("folder", "torchscript", "is a folder"),
                              ("model.pt", "onnx", "does not fit --format onnx"),
                              ("model.onnx", "torchscript", "does not fit --format torchscript")]:
        assert main(["export", "--checkpoint", str(ckpt), "--format", fmt, "--out", str(tmp_path / out)]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "my notes" and not (tmp_path / "notes.txt.json").exists()
    assert main(["export", "--checkpoint", str(ckpt), "--format", "torchscript", "--report", " "]) == 2
    assert "--report is empty" in capsys.readouterr().err


def test_report_box_models_are_refused_clearly():
    with pytest.raises(ValueError, match="report_box=true cannot be exported"):
        ExportGraph(build_model("sam_tiny", report_box=True), [])


def test_shipped_weights_are_refused_before_the_model_is_loaded(monkeypatch, tmp_path):
    import medseg_r.model.shipped as shipped
    from medseg_r.export import export_checkpoint

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(shipped, "load_any", no_load)
    with pytest.raises(ValueError, match="report_box=true cannot be exported"):
        export_checkpoint("litemedsam_phantom", str(tmp_path / "m.onnx"), fmt="onnx")
    assert shipped.stored_options("litemedsam_phantom")["report_box"] is True
    assert shipped.stored_options(str(tmp_path / "missing.ckpt")) is None


@pytest.mark.parametrize("options", [{"priors": "none"}, {"priors": "text_token"},
                                     {"priors": "text_token", "matched_capacity": False}])
@pytest.mark.filterwarnings("ignore:.*torch.jit.load. is deprecated:FutureWarning")
def test_baselines_export_with_their_own_conditioning(tmp_path, options):
    """Capacity-matched baselines run the prior modules on the text (or an empty text) with flat
    location maps; the exported graph must do the same (it once passed no priors: diff 0.07)."""
    model = _trained_like(**options).eval()
    image, _ = chest_like_image()
    result = export_model(model, str(tmp_path / "b.pt"), fmt="torchscript", image=image,
                          report="Nodule in the right upper lobe.")
    assert result["max_abs_diff"] < 1e-4 and result["mask_agreement"] == 1.0

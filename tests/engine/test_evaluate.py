import csv
import json
import os

import numpy as np
import pytest
import torch

from medseg_r.engine.evaluate import case_metrics, confidence_ranking, evaluate, summarise


def _disc(cx, cy, r, size=64):
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_case_metrics_perfect_partial_missed_and_negative():
    truth = _disc(20, 20, 6)
    perfect = case_metrics(truth, truth)
    assert perfect["dice"] == pytest.approx(1.0) and perfect["iou"] == pytest.approx(1.0) and perfect["hd95"] == 0.0
    half = truth.copy()
    half[:, 20:] = False
    part = case_metrics(half, truth)
    # half of a radius-6 disc (50 of 113 px): Dice 2*50/163, and the farthest missed boundary pixel is
    # one radius (6 px) from the cut
    assert part["dice"] == pytest.approx(100 / 163) and part["iou"] == pytest.approx(50 / 113)
    assert part["hd95"] == pytest.approx(6.0)
    missed = case_metrics(np.zeros_like(truth), truth)
    assert missed["dice"] == 0.0 and missed["hd95"] == pytest.approx(np.hypot(64, 64))
    neg = case_metrics(np.zeros_like(truth), np.zeros_like(truth))
    assert neg == {"pred_px": 0.0, "truth_px": 0.0, "false_positive": 0.0}
    assert case_metrics(truth, np.zeros_like(truth))["false_positive"] == 1.0


def test_small_lesion_sensitivity_counts_components():
    truth = _disc(10, 10, 2) | _disc(40, 40, 2) | _disc(30, 10, 12)
    pred = _disc(10, 10, 2)
    m = case_metrics(pred, truth)
    assert (m["lesions"], m["lesions_found"], m["small_lesions"], m["small_found"]) == (3, 1, 2, 1)


def test_summary_per_subset_and_fp_rate():
    rows = [{"id": "a", "tags": ["small"], **case_metrics(_disc(5, 5, 2), _disc(5, 5, 2))},
            {"id": "b", "tags": ["distractor"], **case_metrics(np.zeros((64, 64), bool), _disc(5, 5, 2))},
            {"id": "c", "tags": ["negative"], **case_metrics(_disc(5, 5, 2), np.zeros((64, 64), bool))},
            {"id": "d", "tags": ["negative"], **case_metrics(np.zeros((64, 64), bool), np.zeros((64, 64), bool))}]
    s = summarise(rows)
    assert s["overall"]["n"] == 2 and s["overall"]["dice"] == pytest.approx(0.5)
    assert s["subsets"]["small"]["dice"] == pytest.approx(1.0) and s["subsets"]["distractor"]["dice"] == 0.0
    assert s["subsets"]["overlap"]["dice"] is None
    assert s["negative_fp_rate"] == 0.5 and s["negatives"] == 2


def test_a_diagonal_chain_of_pixels_is_one_lesion():
    truth = np.zeros((64, 64), bool)
    truth[[10, 11, 12], [10, 11, 12]] = True  # 8-connected, as describe counts lesions
    pred = np.zeros_like(truth)
    pred[10, 10] = True
    m = case_metrics(pred, truth)
    assert (m["lesions"], m["lesions_found"], m["small_lesions"], m["small_found"]) == (1, 1, 1, 1)


def test_the_records_own_tags_get_subsets_beside_the_phantoms():
    from medseg_r.engine.evaluate import SUBSETS

    rows = [{"id": "a", "tags": ["small", "mytag"], **case_metrics(_disc(5, 5, 2), _disc(5, 5, 2))},
            {"id": "b", "tags": ["negative"], **case_metrics(_disc(5, 5, 2), np.zeros((64, 64), bool))},
            {"id": "c", "tags": ["negative_slice"],
             **case_metrics(_disc(5, 5, 2), np.zeros((64, 64), bool))}]
    s = summarise(rows)
    assert tuple(s["subsets"]) == (*SUBSETS, "mytag")  # lesion-free tags: the false-positive rate's
    assert s["subsets"]["mytag"]["n"] == 1 and s["subsets"]["mytag"]["dice"] == pytest.approx(1.0)


def test_nan_confidences_never_reach_the_summary():
    rows = [{"id": str(i), "tags": [], "iou": iou, "predicted_iou": p, "mean_probability": 0.5}
            for i, (iou, p) in enumerate([(0.1, 0.9), (0.5, float("nan")), (0.8, 0.2), (0.3, 0.7)])]
    rho = confidence_ranking(rows)
    assert rho["predicted_iou"] == pytest.approx(-1.0)  # the NaN row left out
    rows[0]["predicted_iou"] = rows[2]["predicted_iou"] = float("nan")
    assert confidence_ranking(rows)["predicted_iou"] is None


def test_evaluate_checks_its_threshold_and_size():
    model = _CanvasModel()
    model.img_size = 64
    for kwargs, match in (({"threshold": float("nan")}, "finite logit"),
                          ({"threshold": "0.5"}, "finite logit"),
                          ({"size": 100}, "model's input size 64")):
        with pytest.raises(ValueError, match=match):
            evaluate(model, [], root=".", **{"size": 64, **kwargs})


def test_evaluate_names_a_case_whose_pixels_cannot_be_used(tmp_path, capsys):
    import tifffile
    from PIL import Image

    from medseg_r import build_model
    from medseg_r.checkpoint import save_model
    from medseg_r.cli import main

    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    image[3, 3] = np.nan  # behind a good header: found only when the pixels are read
    tifffile.imwrite(tmp_path / "a.tif", image)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a_mask.png")
    (tmp_path / "m.csv").write_text("id,image,mask,report\na,a.tif,a_mask.png,Nodule in the RUL.\n")
    ckpt = str(tmp_path / "m.ckpt")
    save_model(build_model("sam_tiny", img_size=64), ckpt)
    code = main(["evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "case a, image a.tif: image contains NaN" in err and "no scores were written" in err
    assert not os.path.exists(tmp_path / "eval" / "summary.json")


def test_confidence_ranking_is_spearman_against_real_iou():
    rows = [{"id": str(i), "tags": [], "iou": iou, "predicted_iou": p, "mean_probability": m}
            for i, (iou, p, m) in enumerate([(0.1, 0.9, 0.6), (0.5, 0.5, 0.7), (0.8, 0.2, 0.9), (0.3, 0.7, 0.65)])]
    rows.append({"id": "neg", "tags": ["negative"], "false_positive": 1.0, "predicted_iou": 0.0,
                 "mean_probability": 0.99})  # negatives have no IoU and are left out
    rho = confidence_ranking(rows)
    assert rho["predicted_iou"] == pytest.approx(-1.0) and rho["mean_probability"] == pytest.approx(1.0)
    for r in rows:
        r["mean_probability"] = 0.5  # a constant confidence ranks nothing
    rows[0]["predicted_iou"] = None  # a model without an IoU head
    rho = confidence_ranking(rows)
    assert rho["mean_probability"] is None and rho["predicted_iou"] == pytest.approx(-1.0)
    assert confidence_ranking(rows[:2]) == {"predicted_iou": None, "mean_probability": None}


def test_evaluate_cli_writes_csv_json_and_overlays(tiny_phantom, tmp_path):
    from medseg_r import build_model
    from medseg_r.checkpoint import save_model
    from medseg_r.cli import main

    ckpt = str(tmp_path / "m.ckpt")
    save_model(build_model("sam_tiny", img_size=64), ckpt)
    out = str(tmp_path / "eval")
    assert main(["evaluate", "--checkpoint", ckpt, "--data", tiny_phantom, "--split", "test", "--out", out,
                 "--overlays", "2"]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    from medseg_r.engine.evaluate import SUBSETS

    assert summary["cases"] == 8 and tuple(summary["subsets"]) == SUBSETS
    assert {"by_location", "by_texture", "by_shape", "phrasing_new", "phrasing_known"} <= set(SUBSETS)
    lines = open(os.path.join(out, "cases.csv")).read().strip().splitlines()
    assert len(lines) == 9 and lines[0].endswith("predicted_iou,mean_probability")
    assert set(summary["confidence_rank_correlation"]) == {"predicted_iou", "mean_probability"}
    assert len(os.listdir(os.path.join(out, "overlays"))) == 2


def test_evaluate_cli_names_missing_and_mismatched_files_in_one_line_before_loading(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from medseg_r.cli import main

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "a_mask.png")
    (tmp_path / "m.csv").write_text("id,image,mask,report\n"
                                    "a,a.png,a_mask.png,Nodule in the right upper lobe.\n"
                                    "b,b.png,b_mask.png,Nodule in the left lower lobe.\n")
    code = main(["evaluate", "--checkpoint", str(tmp_path / "no_model.ckpt"), "--data", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "2 file(s) of the scored cases not found: b:" in err
    assert "1 mask(s) differ in size from their image: a: image 32x32, mask (a_mask.png) 32x16" in err
    assert not (tmp_path / "eval").exists()


class _CanvasModel(torch.nn.Module):
    """Marks a fixed block of the 64 px canvas, and the canvas padding, with high logits."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def forward(self, images, reports):
        self.seen = tuple(images.shape[-2:])
        masks = torch.full((images.shape[0], 1, *self.seen), -10.0)
        masks[:, :, 31:34, 15:18] = 10.0  # around the lesion (rows 100-101, cols 50-51 of the 200 x 100 image)
        masks[:, :, :, 40:] = 10.0  # right of the 64 x 32 fitted image (were it given the padding): never scored
        return {"masks": masks, "iou": None, "attention": None}


def test_a_non_square_image_reaches_the_model_without_the_canvas_padding(tmp_path):
    # as predict gives it: on the padded canvas the model took the padding for image (the priors
    # spread over it) and evaluate's masks and scores differed from predict's
    from medseg_r.data.datasets import Record

    image, mask = np.zeros((200, 100, 3), np.uint8), np.zeros((200, 100), np.uint8)
    mask[100:102, 50:52] = 1
    model = _CanvasModel()
    evaluate(model, [Record(id="wide", image=image, mask=mask, report="Nodule.")], root=".", size=64)
    assert model.seen == (64, 32)


def test_evaluate_scores_what_predict_predicts_on_a_non_square_image(tmp_path):
    from medseg_r import build_model
    from medseg_r.data.datasets import Record
    from medseg_r.inference.predictor import Predictor

    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=64).eval()
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.3)
    rng = np.random.default_rng(0)
    image = (rng.random((64, 128, 3)) * 255).astype(np.uint8)
    mask = np.zeros((64, 128), np.uint8)
    mask[20:30, 80:95] = 1
    report = "Nodule in the left upper lobe."
    evaluate(model, [Record(id="wide", image=image, mask=mask, report=report)], root=".", size=64,
             out_dir=str(tmp_path), save_predictions=True)
    from PIL import Image

    scored = np.array(Image.open(tmp_path / "predictions" / "wide.png")) > 0
    predicted = Predictor(model, device="cpu").predict_image(image, report).prob > 0.5
    assert scored.shape == predicted.shape == (64, 128)
    assert (scored == predicted).mean() > 0.99


def test_cases_are_scored_at_their_own_size_and_tiny_lesions_count(tmp_path):
    from PIL import Image

    from medseg_r.data.datasets import Record

    image = np.zeros((200, 100, 3), np.uint8)
    mask = np.zeros((200, 100), np.uint8)
    mask[100:102, 50:52] = 1  # 2 x 2 px: a quarter of a canvas pixel at 64 px, lost by a nearest resize
    records = [Record(id="tiny", image=image, mask=mask, report="Nodule in the right upper lobe.")]
    summary = evaluate(_CanvasModel(), records, root=".", size=64, out_dir=str(tmp_path), save_predictions=True)
    row = next(csv.DictReader(open(tmp_path / "cases.csv")))
    assert summary["overall"]["n"] == 1 and summary["negatives"] == 0
    assert float(row["truth_px"]) == 4 and float(row["lesions_found"]) == 1
    predicted = np.array(Image.open(tmp_path / "predictions" / "tiny.png")) > 0
    assert predicted.shape == (200, 100) and float(row["pred_px"]) == predicted.sum()
    rows, cols = np.nonzero(predicted)
    assert 95 <= rows.min() and rows.max() <= 107 and 45 <= cols.min() and cols.max() <= 57  # no padding scored


def test_a_predicted_iou_outside_0_1_is_clamped(tmp_path):
    from medseg_r.data.datasets import Record

    class Unbounded(_CanvasModel):  # SAM's IoU head is a linear layer: an untrained one gives -0.1
        def forward(self, images, reports):
            out = super().forward(images, reports)
            out["iou"] = torch.tensor([[-0.1], [1.3]])[: images.shape[0]]
            return out

    image, mask = np.zeros((200, 200, 3), np.uint8), np.zeros((200, 200), np.uint8)  # one batch
    mask[100:102, 50:52] = 1
    records = [Record(id=i, image=image, mask=mask, report="Nodule.") for i in ("a", "b")]
    evaluate(Unbounded(), records, root=".", size=64, out_dir=str(tmp_path), batch_size=2)
    rows = list(csv.DictReader(open(tmp_path / "cases.csv")))
    assert [float(r["predicted_iou"]) for r in rows] == [0.0, 1.0]


def test_rows_that_share_a_case_id_are_scored_under_ids_of_their_own(tmp_path):
    from medseg_r.data.datasets import Record
    from medseg_r.data.readers import DataWarning

    image, mask = np.zeros((200, 100, 3), np.uint8), np.zeros((200, 100), np.uint8)
    mask[100:102, 50:52] = 1
    records = [Record(id="img", image=image, mask=mask, report="Nodule.") for _ in range(3)]
    with pytest.warns(DataWarning, match="1 case id\\(s\\) name several rows \\(e.g. img\\)"):
        evaluate(_CanvasModel(), records, root=".", size=64, out_dir=str(tmp_path), overlays=3)
    rows = list(csv.DictReader(open(tmp_path / "cases.csv")))
    assert [r["id"] for r in rows] == ["img", "img~2", "img~3"]
    assert sorted(os.listdir(tmp_path / "overlays")) == ["img.png", "img~2.png", "img~3.png"]


def test_an_id_made_for_a_repeated_row_never_takes_one_a_row_has(tmp_path):
    from medseg_r.data.datasets import Record
    from medseg_r.data.readers import DataWarning

    image, mask = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)
    records = [Record(id=i, image=image, mask=mask, report="Nodule.") for i in ("dup", "dup", "dup~2")]
    with pytest.warns(DataWarning, match="give each row an id of its own"):
        evaluate(_CanvasModel(), records, root=".", size=64, out_dir=str(tmp_path), overlays=3)
    rows = list(csv.DictReader(open(tmp_path / "cases.csv")))
    assert [r["id"] for r in rows] == ["dup", "dup~3", "dup~2"]
    assert len(os.listdir(tmp_path / "overlays")) == 3


def test_ids_with_a_folder_part_are_scored_when_nothing_is_named_after_them(tmp_path):
    from medseg_r.data.datasets import Record

    image, mask = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)
    records = [Record(id="patient1/slice3", image=image, mask=mask, report="Nodule.")]
    evaluate(_CanvasModel(), records, root=".", size=64, out_dir=str(tmp_path))
    assert next(csv.DictReader(open(tmp_path / "cases.csv")))["id"] == "patient1/slice3"
    with pytest.raises(ValueError, match="must be a plain file name"):
        evaluate(_CanvasModel(), records, root=".", size=64, out_dir=str(tmp_path), overlays=1)


def test_an_overlay_names_its_case_and_scores_and_shows_the_report(tmp_path, monkeypatch):
    """An overlay was the bare picture: which case, how well it scored and what its report said were
    left to cases.csv and the manifest."""
    from medseg_r.data.datasets import Record
    from medseg_r.engine import evaluate as evaluate_module

    titles = []
    drawn = evaluate_module._figure_title
    monkeypatch.setattr(evaluate_module, "_figure_title", lambda *a: titles.append(drawn(*a)) or titles[-1])
    image, mask = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)
    mask[10:20, 10:20] = 1
    records = [Record(id="lesion", image=image, mask=mask, report="Nodule in the right upper lobe."),
               Record(id="clear", image=image, mask=np.zeros_like(mask), report="No nodule.")]
    evaluate(_CanvasModel(), records, root=".", size=64, out_dir=str(tmp_path), overlays=2)
    rows = {r["id"]: r for r in csv.DictReader(open(tmp_path / "cases.csv"))}
    dice, found = float(rows["lesion"]["dice"]), rows["lesion"]["lesions_found"]
    assert titles[0].startswith(f"lesion   Dice {dice:.3f}   IoU ") and titles[0].endswith(f"found {found}/1")
    marked = "marks nothing" if rows["clear"]["false_positive"] == "0.0" else "false positive"
    assert titles[1].startswith("clear   no lesion: ") and marked in titles[1]
    from PIL import Image

    picture = Image.open(tmp_path / "overlays" / "lesion.png")
    assert picture.width > 64 and picture.height > 64  # the figure: overlay, title and report lines


def test_a_long_title_widens_the_figure_instead_of_being_cut():
    from medseg_r.report import parse_report
    from medseg_r.viz.report_figure import prediction_figure

    short = prediction_figure(np.zeros((64, 64)), np.zeros((64, 64), bool), parse_report("nodule"), title="a")
    title = "a_long_case_id_of_a_pacs_export_0001234567   Dice 0.915   IoU 0.843   HD95 1.0 px   lesions found 1/1"
    long = prediction_figure(np.zeros((64, 64)), np.zeros((64, 64), bool), parse_report("nodule"), title=title)
    assert short.shape[1] == 640 and long.shape[1] > 640


def test_a_long_report_ends_in_an_ellipsis_inside_the_figure(monkeypatch):
    # the "..." of a report longer than 12 lines was drawn below the picture's edge: cut with no sign
    from medseg_r.report import parse_report
    from medseg_r.viz import report_figure

    drawn = []
    real = report_figure._draw_text

    def spy(draw, *args, **kwargs):
        end = real(draw, *args, **kwargs)
        drawn.append(end)
        return end

    monkeypatch.setattr(report_figure, "_draw_text", spy)
    picture = report_figure.prediction_figure(np.zeros((256, 256)), np.zeros((256, 256), bool),
                                              parse_report("Nodule in the left lower zone. " * 600), title="x")
    assert drawn[0] + 30 <= picture.shape[0]  # the ellipsis line and the legend are on the picture


def test_evaluate_names_the_splits_a_data_set_has_when_the_asked_one_has_none(tmp_path, capsys):
    from medseg_r.cli import main

    (tmp_path / "m.csv").write_text("id,image,mask,report,split\n"
                                    "a,a.png,a_mask.png,Nodule.,Test\nb,b.png,b_mask.png,Nodule.,train\n")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "no_model.ckpt"), "--data",
                 str(tmp_path / "m.csv"), "--out", str(tmp_path / "eval")]) == 2
    assert "no case in split 'test' of" in (err := capsys.readouterr().err)
    assert "(its splits: 'Test' 1, train 1; --split chooses)" in err


def _disc_cases(tmp_path, manifest: str) -> str:
    """A 64 px picture with one bright disc (a.png), its mask (a_mask.png), an empty mask
    (empty_mask.png), ``manifest`` as m.csv beside them, and a random sam_tiny checkpoint (its path)."""
    from PIL import Image

    from medseg_r import build_model
    from medseg_r.checkpoint import save_model

    image = np.full((64, 64), 60, np.uint8)
    image[_disc(32, 20, 6) > 0] = 220
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray((_disc(32, 20, 6) > 0).astype(np.uint8) * 255).save(tmp_path / "a_mask.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "empty_mask.png")
    (tmp_path / "m.csv").write_text(manifest)
    ckpt = str(tmp_path / "m.ckpt")
    save_model(build_model("sam_tiny", img_size=64), ckpt)
    return ckpt


def test_a_report_negating_every_finding_of_a_case_with_a_lesion_is_noted(tmp_path, capsys):
    # evaluate ran the model (Dice 0.87) where predict gives "No nodule." an empty mask, unsaid
    from medseg_r.cli import main

    ckpt = _disc_cases(tmp_path, "id,image,mask,report\na,a.png,a_mask.png,No nodule.\n"
                                 "b,a.png,a_mask.png,Nodule in the right upper lobe.\n"
                                 "c,a.png,empty_mask.png,No nodule.\n")
    assert main(["evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "eval")]) == 0
    summary = json.load(open(tmp_path / "eval" / "summary.json"))
    assert summary["all_negative_reports"] == {"cases": 2, "with_lesion": 1}
    assert "1 scored case(s) with a lesion have a report that negates every finding" in capsys.readouterr().err


def test_evaluate_threshold_saved_masks_subset_fp_rates_and_a_short_printout(tmp_path, capsys):
    # no --threshold or --save-predictions (the API had them); a user's tag of lesion-free cases
    # showed n 0 and nulls; nine all-null phantom subsets were printed for data without them
    from PIL import Image

    from medseg_r.cli import main

    ckpt = _disc_cases(tmp_path, "id,image,mask,report,tags\n"
                                 "a,a.png,a_mask.png,Nodule in the right upper lobe.,mine\n"
                                 "c,a.png,empty_mask.png,Nodule in the right upper lobe.,neg\n")
    assert main(["evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "m.csv"), "--out",
                 str(tmp_path / "eval"), "--threshold", "0.2", "--save-predictions"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[:out.rindex("}") + 1])
    assert set(printed["subsets"]) == {"mine", "neg"}  # the phantom's empty ones: in summary.json only
    assert printed["threshold"] == 0.2
    summary = json.load(open(tmp_path / "eval" / "summary.json"))
    assert summary["subsets"]["neg"]["negatives"] == 1 and summary["subsets"]["neg"]["fp_rate"] is not None
    assert sorted(os.listdir(tmp_path / "eval" / "predictions")) == ["a.png", "c.png"]
    def marked():
        return int((np.asarray(Image.open(tmp_path / "eval" / "predictions" / "a.png")) > 0).sum())

    loose = marked()
    # evaluate's own folder with its predictions is run again (it was refused: "it holds predictions")
    assert main(["evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "m.csv"), "--out",
                 str(tmp_path / "eval"), "--threshold", "0.9", "--save-predictions"]) == 0
    assert marked() <= loose
    assert main(["evaluate", "--checkpoint", ckpt, "--data", str(tmp_path / "m.csv"), "--out",
                 str(tmp_path / "eval2"), "--threshold", "1.5"]) == 2


def test_evaluate_overlays_draw_the_image_as_predict_draws_it(tmp_path):
    # a low-contrast 8-bit image (values 101..139) was stretched to 0..255 in evaluate's overlay
    # while predict's figure and the web page show it as stored
    from PIL import Image

    from medseg_r import build_model
    from medseg_r.data.readers import read_dataset

    image = np.full((64, 64), 101, np.uint8)
    image[_disc(32, 20, 6) > 0] = 139
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray((_disc(32, 20, 6) > 0).astype(np.uint8) * 255).save(tmp_path / "a_mask.png")
    (tmp_path / "m.csv").write_text("id,image,mask,report\na,a.png,a_mask.png,Nodule in the right upper lobe.\n")
    records, root = read_dataset(str(tmp_path / "m.csv"))
    evaluate(build_model("sam_tiny", img_size=64), records, root=root, size=64,
             out_dir=str(tmp_path / "eval"), overlays=1)
    drawn = np.asarray(Image.open(tmp_path / "eval" / "overlays" / "a.png"))[..., :3].astype(int)
    grey = drawn[(drawn[..., 0] == drawn[..., 1]) & (drawn[..., 1] == drawn[..., 2])][:, 0]
    assert {101, 139} <= set(np.unique(grey).tolist())  # the picture's own grey levels

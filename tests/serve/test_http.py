"""The web app over real HTTP (uvicorn on a loopback port): the page's calls, the files it offers
(identical to predict's), bad inputs, volumes, ten concurrent sessions and the busy answer."""

import io
import os
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

from medseg_r.inference import PredictOptions, Predictor, predict_case

from .conftest import REPORT, noise_png, write_dicom_series


def _predict(model, path, report, out, **options):
    """What ``medseg-r predict`` writes for this case: {output kind: bytes}."""
    summary = predict_case(
        Predictor(model, device="cpu"),
        str(path),
        report,
        str(out),
        options=PredictOptions(progress=False, **options),
    )
    written = {}
    for kind, name in summary["outputs"].items():
        with open(os.path.join(out, name), "rb") as handle:
            written[kind] = handle.read()
    return written


def test_example_segment_correct_and_download_like_predict(make_server, serve_model, tmp_path):
    client, service = make_server()
    sid = client.session()
    status, info, _ = client.request("POST", f"/api/session/{sid}/example/chest_xray")
    assert status == 200 and (info["width"], info["height"], info["kind"]) == (256, 256, "image")
    status, view, _ = client.request("POST", "/api/parse", {"report": REPORT})
    assert (
        status == 200 and view["findings"][0]["side"] == "right" and view["findings"][1]["negated"]
    )

    status, first, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})
    assert status == 200 and first["rev"] == 1 and first["timing"]["encoder_runs"] == 1
    row = first["findings"][0]
    assert (row["side"], row["zones"], row["target"]) == ("right", ["upper"], "nodule")
    status, png, head = client.request("GET", f"/api/session/{sid}/layer/mask.png")
    layer = np.asarray(Image.open(io.BytesIO(png)))
    assert head["content-type"] == "image/png" and layer.shape == (256, 256, 4)
    assert (layer[..., 3] > 0).sum() == first["mask_pixels"] > 0
    status, error, _ = client.request("GET", f"/api/session/{sid}/layer/foo.png")
    assert status == 400 and "unknown layer 'foo'" in error["error"]

    box = [60, 40, 130, 110]
    status, second, _ = client.request(
        "POST", f"/api/session/{sid}/segment", {"report": REPORT, "box": box}
    )
    assert status == 200 and second["rev"] == 2
    assert second["timing"]["encoder_runs"] == 0 and second["timing"]["encoder_memo_hits"] == 1
    example = service.examples["chest_xray"].write(str(tmp_path))
    expected = _predict(
        serve_model, example, REPORT, tmp_path / "predict", box=tuple(float(v) for v in box)
    )
    for what in ("mask", "overlay"):
        status, data, head = client.request("GET", f"/api/session/{sid}/download/{what}")
        assert status == 200 and data == expected[what], what
        assert f'filename="example_{what}.png"' in head["content-disposition"]
    status, data, _ = client.request("GET", f"/api/session/{sid}/download/json")
    assert data["options"]["box"] == box and data["prompts"] == {"box": box, "points": []}
    status, error, _ = client.request("GET", f"/api/session/{sid}/download/sheet")
    assert status == 400 and "for volumes only" in error["error"]
    status, error, _ = client.request("GET", f"/api/session/{sid}/download/bogus")
    assert status == 400 and "unknown download 'bogus'" in error["error"]

    status, third, _ = client.request(
        "POST",
        f"/api/session/{sid}/segment",
        {"report": "Patchy opacity in the left lower zone.", "points": [[50, 60, 1]]},
    )
    assert (
        status == 200
        and third["timing"]["encoder_runs"] == 1
        and third["findings"][0]["side"] == "left"
    )


def test_bad_uploads_are_refused_and_the_server_keeps_serving(make_server, tmp_path):
    client, service = make_server(max_upload_mb=0.05)
    sid = client.session()
    assert client.request("POST", f"/api/session/{sid}/example/chest_xray")[0] == 200
    upload = f"/api/session/{sid}/upload?name="
    status, body, _ = client.request("POST", upload + "scan.png", raw=b"\x89PNG\r\n\x1a\n garbage")
    assert status == 400 and re.match(
        r"scan.png (is not a readable image|could not be decoded)", body["error"]
    )
    assert "medseg-r-serve" not in body["error"]  # the server's folders are not shown
    status, body, _ = client.request("POST", upload + "big.png", raw=b"\0" * 60_000)
    assert status == 413 and "0.05 MB" in body["error"]
    status, body, _ = client.request("POST", upload + "notes.txt", raw=b"hello")
    assert status == 415 and "wrong kind of file" in body["error"]
    status, body, _ = client.request("POST", upload + "empty.nii.gz", raw=b"")
    assert status == 400 and "empty" in body["error"]
    status, body, _ = client.request("POST", upload + "ct.nii.gz", raw=b"\x1f\x8b broken gzip")
    assert status == 400 and "not a readable NIfTI" in body["error"]
    # The example loaded before is still the case, and nothing of the refused files is left.
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})
    assert status == 200 and view["mask_pixels"] >= 0
    session = service.store.get(sid)
    assert sorted(os.listdir(session.folder)) == ["case-1"] and session.case.name == "example.png"


@pytest.mark.parametrize(
    "request_body, status, message",
    [
        ({"report": ""}, 400, "the report is empty"),
        ({"report": "Heart size is normal."}, 400, "names no finding"),
        ({"report": REPORT, "box": [5, 5, 5, 9]}, 400, "box is empty"),
        ({"report": REPORT, "points": [[10, 10, 2]]}, 400, "label 1 (include) or 0"),
        ({"report": REPORT, "window": "brain"}, 400, "unknown window"),
        ({"report": "nodule " * 30_000}, 400, "the limit is 200,000"),
        ({"report": 5}, 400, "the report must be text"),
        ({"report": REPORT, "box": [float("nan")] * 4}, 400, "four finite numbers"),
        ({"report": REPORT, "box": [True, True, 50, 50]}, 400, "a box is four numbers"),
        ({"report": REPORT, "points": 5}, 400, "points are a list"),
        ({"report": REPORT, "points": [[10, 10, 1.7]]}, 400, "label 1 (include) or 0"),
        ({"report": REPORT, "window": ["x"]}, 400, "unknown window"),
        ({"report": "\udc80 nodule in the right upper lobe"}, 400, "not valid Unicode"),
    ],
)
def test_bad_requests_get_one_line_errors(make_server, request_body, status, message):
    client, _ = make_server()
    sid = client.session()
    assert (
        "load an image"
        in client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})[1]["error"]
    )
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    got, body, _ = client.request("POST", f"/api/session/{sid}/segment", request_body)
    assert got == status and message in body["error"]
    got, body, _ = client.request("POST", "/api/session/nonexistent/segment", {"report": REPORT})
    assert got == 404 and "reload the page" in body["error"]


def test_oversized_deeply_nested_and_form_bodies_get_clear_errors(make_server, monkeypatch):
    """A 300 MB JSON body was read in full (and answered 400 after it); JSON nested 100,000 deep was
    a 500 with a traceback (RecursionError); a form upload (curl -F) was 'not a readable image'."""
    from medseg_r.serve import app

    assert app.MAX_JSON_BYTES == 4 * 2**20
    monkeypatch.setattr(app, "MAX_JSON_BYTES", 2**18)  # a body the client can send before the answer
    client, _ = make_server()
    sid = client.session()
    json_type = {"Content-Type": "application/json"}
    for path in ("/api/parse", f"/api/session/{sid}/segment"):
        status, body, _ = client.request("POST", path, raw=b"[" * 100_000 + b"]" * 100_000, headers=json_type)
        assert status == 400 and body["error"] == "the request body is not JSON"
        status, body, _ = client.request("POST", path, raw=b" " * (2**18 + 1), headers=json_type)
        assert status == 413 and "larger than 0.25 MB" in body["error"]
    form = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG\r\n--x--\r\n'
    status, body, _ = client.request("POST", f"/api/session/{sid}/upload?name=a.png", raw=form,
                                     headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 415 and "--data-binary" in body["error"]
    assert client.request("POST", "/api/parse", {"report": REPORT})[0] == 200  # still serving


@pytest.mark.parametrize("report", ["  ", None])
@pytest.mark.parametrize("prompt", [{"box": [60, 40, 130, 110]}, {"points": [[95, 75, 1]]}])
def test_a_box_or_points_alone_segment_without_a_report(make_server, prompt, report):
    client, _ = make_server()
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment",
                                     {"report": report, **prompt})
    assert status == 200 and view["findings"] == []
    status, data, _ = client.request("GET", f"/api/session/{sid}/download/json")
    assert data["rule"] == "no finding parsed: model run without report priors"
    assert data["prompts"] == {"box": prompt.get("box"), "points": prompt.get("points", [])}


def test_a_normal_study_gives_an_empty_mask_and_the_page_is_told_why(make_server):
    client, _ = make_server()
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    report = "Heart size is normal. The lungs are clear."
    status, view, _ = client.request("POST", "/api/parse", {"report": report})
    assert status == 200 and view["findings"] == [] and view["all_negative"]
    assert view["normal_statements"] == ["lungs are clear"]
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": report})
    assert status == 200 and view["mask_pixels"] == 0
    status, data, _ = client.request("GET", f"/api/session/{sid}/download/json")
    assert data["rule"] == "a normal study stated, no finding: empty mask, model not run"


def test_a_one_slice_volume_takes_box_and_point_prompts_a_stack_does_not(make_server, tmp_path):
    # a DICOM radiograph or a 2-D NIfTI is a one-slice volume: the page refused its prompts
    import nibabel as nib

    picture = np.zeros((64, 64, 1), np.float32)
    picture[20:30, 10:20] = 1.0
    nib.save(nib.Nifti1Image(picture, np.diag([0.5, 0.5, 1.0, 1.0])), str(tmp_path / "cxr.nii.gz"))
    client, _ = make_server()
    sid = client.session()
    status, info, _ = client.request("POST", f"/api/session/{sid}/upload?name=cxr.nii.gz",
                                     raw=(tmp_path / "cxr.nii.gz").read_bytes())
    assert status == 200 and (info["kind"], info["slices"]) == ("volume", 1)
    prompt = {"report": "", "box": [5, 5, 40, 40], "points": [[15, 25, 1]]}
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment", prompt)
    assert status == 200, view
    client.request("POST", f"/api/session/{sid}/example/chest_ct")
    status, error, _ = client.request("POST", f"/api/session/{sid}/segment", {**prompt, "report": REPORT})
    assert status == 400 and "a volume of several slices is segmented from the report" in error["error"]


def _ct(path):
    import nibabel as nib

    hu = np.full((48, 40, 12), -800.0, np.float32)
    hu[8:16, 22:30, 8:11] = 40.0  # x low: the patient's left; cranial slices
    nib.save(nib.Nifti1Image(hu, np.diag([0.8, 0.8, 2.5, 1.0])), str(path))
    return str(path)


def test_a_volume_segments_slice_wise_and_downloads_like_predict(
    make_server, serve_model, tmp_path
):
    import nibabel as nib

    client, _ = make_server()
    sid = client.session()
    path = _ct(tmp_path / "ct.nii.gz")
    with open(path, "rb") as handle:
        status, info, _ = client.request(
            "POST", f"/api/session/{sid}/upload?name=ct.nii.gz", raw=handle.read()
        )
    assert status == 200 and (info["kind"], info["slices"], info["ct"], info["window"]) == (
        "volume",
        12,
        True,
        "lung",
    )
    assert (info["width"], info["height"]) == (48, 40)
    report = "Round nodule in the left upper lobe."
    status, body, _ = client.request(
        "POST", f"/api/session/{sid}/segment", {"report": report, "box": [1, 1, 9, 9]}
    )
    assert status == 400 and "2-D images" in body["error"]
    status, view, _ = client.request(
        "POST", f"/api/session/{sid}/segment", {"report": report, "window": "lung"}
    )
    assert (
        status == 200
        and view["findings"][0]["z_range"] == [8, 11]
        and view["slices"]["described"] == 4
    )
    assert 8 <= view["show_slice"] <= 11 or view["mask_pixels"] == 0
    status, png, _ = client.request("GET", f"/api/session/{sid}/layer/mask.png?z=9")
    assert status == 200 and np.asarray(Image.open(io.BytesIO(png))).shape == (40, 48, 4)
    assert client.request("GET", f"/api/session/{sid}/image.png?z=12&window=bone")[0] == 400
    assert client.request("GET", f"/api/session/{sid}/image.png?z=11&window=bone")[0] == 200
    expected = _predict(serve_model, path, report, tmp_path / "predict", window=(-600.0, 1500.0))
    status, data, _ = client.request("GET", f"/api/session/{sid}/download/mask")
    assert status == 200 and data == expected["mask"]
    got, want = (
        nib.load(p)
        for p in (
            _save(tmp_path / "got.nii.gz", data),
            _save(tmp_path / "w.nii.gz", expected["mask"]),
        )
    )
    assert np.array_equal(got.get_fdata(), want.get_fdata()) and np.allclose(
        got.affine, want.affine
    )
    assert client.request("GET", f"/api/session/{sid}/download/sheet")[0] == 200


def _save(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def test_ten_concurrent_sessions_get_their_own_masks(make_server, serve_model, tmp_path):
    client, service = make_server(workers=2, queue=8)
    reports = [REPORT, "Patchy opacity in the left lower zone."]
    images = [noise_png(tmp_path / f"img{i}.png", seed=i) for i in range(10)]
    expected = [
        _predict(serve_model, images[i], reports[i % 2], tmp_path / f"want{i}")["mask"]
        for i in range(10)
    ]
    assert len(set(expected)) == 10  # every case has its own answer, so a mix-up would show
    got, errors = [None] * 10, []
    start = threading.Barrier(10)

    def one(i):
        try:
            sid = client.session()
            with open(images[i], "rb") as handle:
                assert (
                    client.request(
                        "POST", f"/api/session/{sid}/upload?name=img{i}.png", raw=handle.read()
                    )[0]
                    == 200
                )
            start.wait(30)
            status, view, _ = client.request(
                "POST", f"/api/session/{sid}/segment", {"report": reports[i % 2]}
            )
            assert status == 200, view
            got[i] = client.request("GET", f"/api/session/{sid}/download/mask")[1]
        except Exception as exc:  # reported below with its session number
            errors.append((i, repr(exc)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert got == expected and len(service.store) == 10


def _one_worker_taken(make_server, *, queue):
    """A server with one worker, kept busy until the returned event is set; a session with the
    radiograph example loaded. -> (client, service, sid, release, blocker)"""
    client, service = make_server(workers=1, queue=queue)
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    release = threading.Event()
    blocker = service.queue.submit(lambda: release.wait(60))  # the only worker is taken
    return client, service, sid, release, blocker


def test_a_full_queue_answers_busy_and_recovers(make_server):
    client, service, sid, release, blocker = _one_worker_taken(make_server, queue=0)
    status, body, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})
    assert status == 503 and "busy" in body["error"] and "try again" in body["error"]
    release.set()
    blocker.result(60)
    assert client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})[0] == 200


def test_a_page_segmenting_already_gets_409(make_server):
    client, service = make_server()
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    session = service.store.get(sid)
    with session.lock:  # as while its own segmentation runs
        status, body, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})
    assert status == 409 and "still segmenting" in body["error"]


def test_an_upload_while_the_page_segments_is_refused_and_not_kept(make_server):
    client, service = make_server()
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    session = service.store.get(sid)
    before = sorted(os.listdir(session.folder))
    with session.lock:  # as while its own segmentation runs
        status, body, _ = client.request("POST", f"/api/session/{sid}/upload?name=scan.png",
                                         raw=b"\x89PNG\r\n\x1a\n" + b"x" * 1000)
    assert status == 409 and "still segmenting" in body["error"]
    assert sorted(os.listdir(session.folder)) == before


def test_a_report_of_lone_surrogates_is_a_400_on_parse(make_server):
    client, _ = make_server()
    status, body, _ = client.request("POST", "/api/parse", {"report": "\udc80 nodule"})
    assert status == 400 and "not valid Unicode" in body["error"]


def test_ending_a_session_removes_its_folder(make_server):
    client, service = make_server()
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_ct")
    folder = service.store.get(sid).folder
    assert os.listdir(folder) == ["case-1"]
    assert client.request("POST", f"/api/session/{sid}/end")[1] == {"ended": True}
    assert (
        not os.path.exists(folder) and client.request("POST", f"/api/session/{sid}/ping")[0] == 404
    )
    root = service.store.root
    service.close()
    assert not os.path.exists(root)


def test_a_bug_is_a_500_in_one_line_and_the_server_goes_on(make_server, monkeypatch):
    client, service = make_server()

    def broken(text):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(service, "parse", broken)
    status, body, _ = client.request("POST", "/api/parse", {"report": REPORT})
    assert status == 500 and body == {"error": "internal error (RuntimeError: simulated bug)"}
    monkeypatch.undo()
    status, view, _ = client.request("POST", "/api/parse", {"report": REPORT})
    assert status == 200 and view["findings"][0]["target"] == "nodule"
    status, page, _ = client.request("GET", "/")
    assert status == 200 and b'<script src="/static/app.js">' in page
    for asset in ("app.js", "viewer.js", "results.js", "style.css"):
        assert client.request("GET", f"/static/{asset}")[0] == 200


def test_a_queued_segmentation_is_told_the_server_stops_and_its_session_can_end(make_server):
    client, service, sid, release, blocker = _one_worker_taken(make_server, queue=1)
    answer = {}
    waiting = threading.Thread(target=lambda: answer.update(
        r=client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})))
    waiting.start()
    deadline = time.monotonic() + 30
    while service.queue.in_flight < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert service.queue.cancel_waiting() == 1  # what the server does first when it stops
    waiting.join(30)
    status, body, _ = answer["r"]
    assert status == 503 and "stopping" in body["error"]
    ended = threading.Thread(target=service.store.end, args=(sid,))
    ended.start()
    ended.join(10)
    assert not ended.is_alive()  # the cancelled job's claim on the session was released
    release.set()
    blocker.result(60)


def test_requests_for_another_host_or_from_another_site_are_refused(make_server):
    client, _ = make_server()
    status, body, _ = client.request("POST", "/api/session", headers={"Host": "attacker.example:7860"})
    assert status == 403 and "answers requests to" in body["error"]  # DNS rebinding
    status, body, _ = client.request("POST", "/api/session",
                                     headers={"Origin": "http://attacker.example"})
    assert status == 403 and "another site" in body["error"]
    same = client.base.split("//")[1]
    assert client.request("POST", "/api/session", headers={"Origin": f"http://{same}"})[0] == 200
    assert client.request("GET", "/", headers={"Host": f"localhost:{same.split(':')[1]}"})[0] == 200


def test_unknown_api_paths_and_methods_answer_json(make_server):
    client, _ = make_server()
    status, body, _ = client.request("GET", "/api/session")
    assert status == 405 and body["error"] == "Method Not Allowed"
    status, body, _ = client.request("GET", "/api/nothing/here")
    assert status == 404 and body["error"] == "Not Found"


def test_an_upload_without_a_name_is_told_so(make_server):
    client, _ = make_server()
    sid = client.session()
    status, body, _ = client.request("POST", f"/api/session/{sid}/upload", raw=b"\x89PNG" + b"x" * 100)
    assert status == 400 and "no file name given" in body["error"]


def test_a_dicom_file_without_an_ending_is_read(make_server, tmp_path):
    client, _ = make_server()
    sid = client.session()
    folder = write_dicom_series(tmp_path / "series", np.full((40, 36, 1), -700.0))
    data = open(os.path.join(folder, sorted(os.listdir(folder))[0]), "rb").read()
    status, info, _ = client.request("POST", f"/api/session/{sid}/upload?name=IM000020", raw=data)
    assert status == 200 and info["format"] == "dicom" and info["slice_mm"] is None


def test_the_page_is_given_predicts_warnings_and_the_idle_time(make_server, tmp_path):
    client, _ = make_server(idle_minutes=2)
    status, body, _ = client.request("POST", "/api/session")
    assert body["idle_minutes"] == 2
    sid = body["session"]
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(tmp_path / "blank.png")
    client.request("POST", f"/api/session/{sid}/upload?name=blank.png",
                   raw=(tmp_path / "blank.png").read_bytes())
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})
    assert status == 200 and any("blank" in w for w in view["warnings"])


def test_a_box_with_a_negated_report_gives_an_empty_mask_and_says_the_box_was_not_used(make_server):
    client, _ = make_server()
    sid = client.session()
    client.request("POST", f"/api/session/{sid}/example/chest_xray")
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment",
                                     {"report": "No nodule.", "box": [40, 30, 110, 100]})
    assert status == 200 and view["mask_pixels"] == 0 and "box / points were not used" in view["rule"]


def test_a_dicom_radiograph_downloads_its_mask_in_the_stored_pixel_order(make_server, serve_model,
                                                                       tmp_path):
    # a mirrored film (PatientOrientation R\F) is shown turned; its stored-order PNG is predict's
    from tests.data.test_projection import write_radiograph

    rng = np.random.default_rng(3)
    path = write_radiograph(tmp_path / "cxr.dcm", rng.integers(0, 4000, size=(40, 48)), ["R", "F"])
    client, _ = make_server()
    sid = client.session()
    with open(path, "rb") as handle:
        status, info, _ = client.request("POST", f"/api/session/{sid}/upload?name=cxr.dcm",
                                         raw=handle.read())
    assert status == 200
    status, view, _ = client.request("POST", f"/api/session/{sid}/segment", {"report": REPORT})
    assert status == 200 and "stored_mask" in view["downloads"]
    assert any("PatientOrientation R\\F" in w for w in view["warnings"])
    expected = _predict(serve_model, path, REPORT, tmp_path / "predict")
    status, data, _ = client.request("GET", f"/api/session/{sid}/download/stored_mask")
    assert status == 200 and data == expected["stored_mask"]
    assert np.asarray(Image.open(io.BytesIO(data))).shape == (40, 48)

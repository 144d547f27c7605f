"""Fixtures of the web app's tests: a seeded tiny MedSeg-R checkpoint with open gates (so the report
changes the mask), an in-process server on a free port, and a small HTTP client."""

import json
import os
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web app needs: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="the web app needs: pip install -e '.[serve]'")

REPORT = "A 2 cm round dense nodule in the right upper lobe. No pleural effusion."


@pytest.fixture(scope="session")
def serve_checkpoint(tmp_path_factory):
    """sam_tiny (128 px canvas: cheap) with seeded random weights and every gate at 0.3, saved as
    a MedSeg-R checkpoint."""
    import torch

    from medseg_r import build_model
    from medseg_r.checkpoint import save_model

    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=128)
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.3)
    path = tmp_path_factory.mktemp("serve_ckpt") / "tiny.ckpt"
    save_model(model, str(path))
    return str(path)


@pytest.fixture(scope="session")
def serve_model(serve_checkpoint):
    from medseg_r.checkpoint import load_model

    return load_model(serve_checkpoint)


class Client:
    """JSON over HTTP to a running server (urllib: nothing beyond the standard library)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def request(self, method: str, path: str, body=None, raw: bytes = None, headers=None):
        """-> (status, parsed JSON or raw bytes, headers)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers or {}
        )
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as response:
                status, payload, head = response.status, response.read(), response.headers
        except urllib.error.HTTPError as err:
            status, payload, head = err.code, err.read(), err.headers
        if "json" in (head.get("content-type") or ""):
            payload = json.loads(payload)
        return status, payload, head

    def session(self) -> str:
        status, body, _ = self.request("POST", "/api/session")
        assert status == 200, body
        return body["session"]


def run_in_thread(service):
    """Start ``create_app(service)`` with uvicorn on a free loopback port in a thread."""
    import uvicorn

    from medseg_r.serve import open_socket
    from medseg_r.serve.app import create_app

    sock = open_socket("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    return server, thread, sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def make_server(serve_model, tmp_path):
    """``make_server(**config)`` -> (Client, Service); every server is stopped after the test."""
    from medseg_r.serve import ServeConfig, Service

    started = []

    def make(**config):
        service = Service(
            serve_model, config=ServeConfig(temp_parent=str(tmp_path), **config), device="cpu"
        )
        server, thread, sock, url = run_in_thread(service)
        started.append((server, thread, sock, service))
        return Client(url), service

    yield make
    for server, thread, sock, service in started:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        service.close()


def noise_png(path, seed: int, size: int = 64) -> str:
    """A small grey PNG that differs by seed (a bright blob at a seed-dependent place)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.normal(90, 20, (size, size))
    cy, cx = rng.integers(size // 5, 4 * size // 5, 2)
    yy, xx = np.mgrid[:size, :size]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 8) ** 2] = 200
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return str(path)


def write_dicom_series(folder, hu: np.ndarray) -> str:
    """A RAS ``[X, Y, Z]`` HU volume as an axial CT series (LPS rows/columns, 0.8 mm, 2.5 mm)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    os.makedirs(folder, exist_ok=True)
    pixels = (hu + 1024).astype(np.uint16)
    for z in range(hu.shape[2]):
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        ds = FileDataset(f"{z}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Modality = "CT"
        plane = pixels[::-1, ::-1, z].T
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelSpacing, ds.SliceThickness = [0.8, 0.8], 2.5
        ds.ImagePositionPatient = [0, 0, 2.5 * z]
        ds.InstanceNumber = z + 1
        ds.PixelData = np.ascontiguousarray(plane).tobytes()
        ds.save_as(os.path.join(folder, f"{z:03d}.dcm"), enforce_file_format=True)
    return str(folder)

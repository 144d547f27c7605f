import os

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A random-initialised MedSeg-R on sam_tiny, saved as a MedSeg-R checkpoint."""
    import torch

    from medseg_r import build_model
    from medseg_r.checkpoint import save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    save_model(build_model("sam_tiny"), str(path))
    return str(path)


@pytest.fixture(scope="session")
def predictor(tiny_checkpoint):
    from medseg_r.checkpoint import load_model
    from medseg_r.inference import Predictor

    return Predictor(load_model(tiny_checkpoint), batch_size=4, device="cpu")


def write_png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def chest(size=64, dtype=np.uint8):
    rng = np.random.default_rng(0)
    img = (rng.random((size, size)) * 60 + 80)
    img[size // 4: size // 2, size // 2: 3 * size // 4] += 80
    if dtype == np.uint16:
        return (img * 200).astype(np.uint16)
    return img.astype(dtype)


def ct_volume(shape=(40, 36, 10)):
    """RAS-ordered CT-like volume with a 'lesion' in the cranial slices on the patient's right."""
    vol = np.full(shape, -800.0, np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[26:32, 10:16, 7:9] = 1  # x high = patient's right in RAS
    vol[mask > 0] = 40.0
    return vol, mask


def write_nifti(path, data, affine=None):
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else affine), str(path))
    return str(path)


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []

"""The example case of `medseg-r predict --example` stored as a mirrored DICOM radiograph
(PatientOrientation R\\F), predicted with the shipped weights: read by its PatientOrientation, and
read as stored (the same file without the attribute). Dice against the example's true nodule mask.

    .venv/bin/python docs/results/intel_xeon/scripts/mirrored_radiograph.py OUT_DIR
"""
import sys

import numpy as np

from medseg_r.example import EXAMPLE_REPORT, chest_like_image
from medseg_r.inference import PredictOptions, Predictor, predict_case
from medseg_r.model.shipped import load_pretrained


def write_radiograph(path, stored, orientation=None):
    """A DX radiograph of ``stored`` pixels, 0.5 mm, no ImageOrientationPatient."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality, ds.PhotometricInterpretation = "DX", "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.SamplesPerPixel, ds.PixelRepresentation = 16, 16, 15, 1, 0
    ds.ImagerPixelSpacing = [0.5, 0.5]
    if orientation:
        ds.PatientOrientation = orientation
    ds.PixelData = np.ascontiguousarray(stored, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def main(out: str) -> None:
    from PIL import Image

    image, truth = chest_like_image()
    stored = image[:, ::-1].astype(np.uint16) * 16  # the film stored mirrored, 12-bit values
    Image.fromarray(image).save(f"{out}/example.png")
    Image.fromarray(truth.astype(np.uint8) * 255).save(f"{out}/truth.png")
    Image.fromarray(np.ascontiguousarray(truth[:, ::-1]).astype(np.uint8) * 255).save(f"{out}/truth_stored.png")
    cases = {"PNG as written by predict --example": (f"{out}/example.png", f"{out}/truth.png"),
             "mirrored DICOM, PatientOrientation R\\F read": (
                 write_radiograph(f"{out}/mirrored.dcm", stored, ["R", "F"]), f"{out}/truth_stored.png"),
             "the same pixels without PatientOrientation (read as stored)": (
                 write_radiograph(f"{out}/unread.dcm", stored), f"{out}/truth_stored.png")}
    predictor = Predictor(load_pretrained(), device="cpu")
    for k, (name, (path, reference)) in enumerate(cases.items()):
        summary = predict_case(predictor, path, EXAMPLE_REPORT, f"{out}/case{k}", reference=reference,
                               options=PredictOptions(progress=False))
        print(f"{name}: Dice {summary['reference']['dice']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])

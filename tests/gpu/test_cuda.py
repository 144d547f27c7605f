"""The model on a CUDA GPU: full-size SAM ViT-B and pretrained LiteMedSAM forward and backward in
mixed precision, the feature cache, and predict on a volume. Skipped without a GPU."""
import numpy as np
import pytest
import torch

from medseg_r import build_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
REPORTS = ["2 cm round spiculated nodule in the right upper lobe", "ground-glass opacity, left base"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("backbone, size", [("sam_vit_b", 1024), ("litemedsam", None)])
def test_forward_backward_in_mixed_precision(backbone, size, dtype):
    torch.manual_seed(0)
    model = build_model(backbone, img_size=size, pretrained=False).cuda().train()
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.1)
    side = model.img_size
    images = torch.rand(2, 3, side, side, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        out = model(images, REPORTS)
        loss = out["masks"].float().sigmoid().mean()
    loss.backward()
    assert out["masks"].shape == (2, 1, side, side) and torch.isfinite(out["masks"]).all()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    for name in model.gates():
        assert float(grads[name].abs().max()) > 0, name


@pytest.fixture
def full_fp32():
    """Plain fp32 convolutions and matmuls: with TF32 (cuDNN's default for convolutions) a batch of
    one and a batch of two can take kernels that round differently (seen: 0.02 in logits ~ -22)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_feature_cache_on_the_gpu(tmp_path, full_fp32):
    from medseg_r.model.feature_cache import FeatureCache

    model = build_model("litemedsam", inject_at=["neck"], report_box=True).cuda()
    images = torch.rand(2, 3, 256, 256, device="cuda")
    with torch.no_grad():
        plain = model(images, REPORTS)["masks"]
        model.feature_cache = FeatureCache(tmp_path, dtype="float32")
        model(images, REPORTS)
        cached = model(images, REPORTS)["masks"]
    assert model.feature_cache.hits == 2 and (cached - plain).abs().max() < 1e-4


def test_predict_on_a_volume_matches_the_cpu(tmp_path):
    import nibabel as nib

    from medseg_r.benchmarks.predict_speed import make_volume
    from medseg_r.inference import Predictor
    from medseg_r.inference.sources import load_source
    from medseg_r.report import parse_report

    path = str(tmp_path / "ct.nii.gz")
    make_volume(path, 6)
    torch.manual_seed(0)
    model = build_model("sam_tiny")
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.1)
    report = parse_report("Multiple round nodules in both lungs.")
    source = load_source(path)
    gpu = Predictor(model, device="cuda", batch_size=4).predict_volume(source, report, progress=False)
    cpu = Predictor(model.cpu(), device="cpu").predict_volume(source, report, progress=False)
    assert gpu.slices_run == cpu.slices_run == 6 and gpu.peak_gpu_mb > 0
    assert np.mean((gpu.prob > 0.5) == (cpu.prob > 0.5)) > 0.999
    assert np.abs(gpu.prob - cpu.prob).max() < 1e-2
    assert nib.load(path).shape[2] == 6

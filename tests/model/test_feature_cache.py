"""The frozen encoder's features, cached on disk, give the same masks as computing them."""
import pytest
import torch

from medseg_r import build_model
from medseg_r.model.encoding import first_site
from medseg_r.model.feature_cache import FeatureCache

REPORTS = ["round nodule in the right upper lobe", "No focal opacity."]


def _model(**options):
    torch.manual_seed(0)
    model = build_model("sam_tiny", img_size=128, **options)
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(0.3)
    return model


@pytest.mark.parametrize("inject_at", [["neck"], ["blocks.2"], None])
def test_cached_and_uncached_forward_agree(tmp_path, inject_at):
    model = _model(inject_at=inject_at)
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        plain = model(images, REPORTS)["masks"]
        model.feature_cache = FeatureCache(tmp_path / "fp32", dtype="float32")
        first = model(images, REPORTS)["masks"]  # computes and stores
        second = model(images, REPORTS)["masks"]  # reads
        assert model.feature_cache.misses == 2 and model.feature_cache.hits == 2
        model.feature_cache = FeatureCache(tmp_path / "fp16")
        half = model(images, REPORTS)["masks"]
    assert (first - plain).abs().max() < 1e-5 and (second - plain).abs().max() < 1e-5
    assert (half - plain).abs().max() < 5e-2  # fp16 storage: close, not exact
    site = first_site(model)
    assert site == (inject_at[0] if inject_at else "patch_embed")
    assert len(list((tmp_path / "fp32").rglob("*.npy"))) == 2


def test_a_changed_image_or_changed_weights_are_new_entries(tmp_path):
    model = _model(inject_at=["neck"])
    model.feature_cache = cache = FeatureCache(tmp_path, dtype="float32")
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        model(images, REPORTS[:1])
        other = images.clone()
        other[0, 0, 5, 5] += 0.5
        model(other, REPORTS[:1])
        assert cache.misses == 2
        model.sam.image_encoder.neck[0].weight.mul_(1.5)  # new weights: no old entry may be read
        changed = model(images, REPORTS[:1])["masks"]
        assert cache.misses == 3
        model.feature_cache = None
        assert (model(images, REPORTS[:1])["masks"] - changed).abs().max() < 1e-5


def test_the_cache_is_not_used_while_the_encoder_trains(tmp_path):
    model = _model(inject_at=["neck"], freeze="none")
    model.feature_cache = cache = FeatureCache(tmp_path)
    model.train()
    model(torch.rand(1, 3, 128, 128), REPORTS[:1])
    assert cache.misses == 0 and cache.hits == 0 and not list(tmp_path.rglob("*.npy"))


def test_deleting_the_cache_folder_is_safe(tmp_path):
    import shutil

    model = _model(inject_at=["neck"])
    model.feature_cache = FeatureCache(tmp_path / "c", dtype="float32", memory_mb=0)
    images = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        a = model(images, REPORTS[:1])["masks"]
        shutil.rmtree(tmp_path / "c")
        b = model(images, REPORTS[:1])["masks"]
    assert torch.equal(a, b) and model.feature_cache.misses == 2


def test_bad_dtype_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        FeatureCache(tmp_path, dtype="int8")

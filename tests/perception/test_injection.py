"""The adapters drive each encoder exactly as its own forward does, from any site on."""
import pytest
import torch

from medseg_r.backbones import build_backbone
from medseg_r.perception.injection import ADAPTERS, detect_family

BACKBONES = [("sam_tiny", 128), ("litemedsam", None)]


def _encoder(name, size):
    torch.manual_seed(0)
    return build_backbone(name, img_size=size, pretrained=False).sam.image_encoder.eval()


@pytest.mark.parametrize("name, size", BACKBONES)
def test_run_without_modulation_is_the_encoder_forward(name, size):
    encoder = _encoder(name, size)
    adapter = ADAPTERS[detect_family(encoder)]
    x = torch.rand(1, 3, encoder.img_size, encoder.img_size)
    seen = []

    def identity(site, features):
        seen.append((site, tuple(features.shape)))
        return features

    with torch.no_grad():
        assert torch.equal(adapter.run(encoder, x, identity), encoder(x))
    sites = adapter.sites(encoder)
    assert [s for s, _ in seen] == list(sites) and seen[-1][0] == "neck"
    assert all(shape[-1] == sites[site] for site, shape in seen)  # channels-last, declared channels


@pytest.mark.parametrize("name, size", BACKBONES)
def test_resuming_from_cached_site_features_gives_the_same_embedding(name, size):
    encoder = _encoder(name, size)
    adapter = ADAPTERS[detect_family(encoder)]
    x = torch.rand(1, 3, encoder.img_size, encoder.img_size)

    def shift(site, features):  # a modulation at every site, so a skipped one would show
        return features + 0.01 * (hash(site) % 7)

    with torch.no_grad():
        full = adapter.run(encoder, x, shift)
        for site in adapter.sites(encoder):
            cached = adapter.features_at(encoder, x, site)
            # modulations before `site` are part of the cached features' history: add them
            expected = adapter.run(encoder, x, lambda s, f: shift(s, f) if _after(adapter, encoder, s, site)
                                   else f)
            resumed = adapter.run(encoder, x, shift, resume=(site, cached))
            assert torch.allclose(resumed, expected, atol=1e-5), site
    assert not torch.equal(full, adapter.run(encoder, x, lambda s, f: f))


def _after(adapter, encoder, site, first):
    names = list(adapter.sites(encoder))
    return names.index(site) >= names.index(first)


def test_unknown_sites_are_value_errors():
    encoder = _encoder("sam_tiny", 128)
    adapter = ADAPTERS["vit"]
    x = torch.rand(1, 3, 128, 128)
    with pytest.raises(ValueError, match="no site 'blocks.99'"):
        adapter.features_at(encoder, x, "blocks.99")
    with pytest.raises(ValueError, match="no perception adapter can drive"):
        detect_family(torch.nn.Linear(2, 2))

import pytest
import torch

from medseg_r.perception import DeformableSampling, DynamicConv, SiteModulator, SpatialAttention

D = 32


def priors(B=2, F=3):
    return {"tokens": torch.randn(B, F, 4, D), "positive": torch.tensor([[True, True, False], [False, False, False]])[:B],
            "global": torch.randn(B, D)}


@pytest.mark.parametrize("H", [1, 7, 16])
def test_modules_keep_shapes(H):
    z = torch.randn(2, 16, H, H + 3)
    p = priors()
    out, att = SpatialAttention(dim=16, prior_dim=D)(z, p, torch.rand(2, 1, H, H + 3))
    assert out.shape == z.shape and att.shape == (2, 1, H, H + 3) and (att >= 0).all() and (att <= 1).all()
    assert DynamicConv(dim=16, prior_dim=D)(z, p).shape == z.shape
    assert DeformableSampling(dim=16, prior_dim=D)(z, p).shape == z.shape


def test_dynamic_conv_kernels_depend_on_texture_token():
    conv = DynamicConv(dim=8, prior_dim=D)
    z = torch.randn(1, 8, 10, 10)
    a, b = priors(1), priors(1)
    a["positive"][:] = True
    b["positive"][:] = True
    assert not torch.allclose(conv(z, a), conv(z, b))


def test_deformable_sampling_starts_on_a_ring_and_offsets_depend_on_shape_token():
    mod = DeformableSampling(dim=8, prior_dim=D, groups=4, radius=2.0)
    z = torch.randn(1, 8, 12, 12)
    mod(z, priors(1))
    ring = mod.last_offsets[0, :, :, 5, 5]
    assert torch.allclose(ring.norm(dim=1), torch.full((4,), 2.0), atol=1e-5)
    with torch.no_grad():
        mod.offset.weight.normal_()
    p1, p2 = priors(1), priors(1)
    p1["positive"][:] = True
    p2["positive"][:] = True
    mod(z, p1)
    first = mod.last_offsets.clone()
    mod(z, p2)
    assert not torch.allclose(first, mod.last_offsets)


def test_site_modulator_is_identity_with_zero_gates_and_not_otherwise():
    site = SiteModulator(channels=24, prior_dim=D, bottleneck=16, max_grid=8)
    x = torch.randn(2, 20, 20, 24)
    assert torch.equal(site(x, priors(), torch.rand(2, 1, 20, 20)), x)
    with torch.no_grad():
        site.gate["dynamic_conv"].fill_(1.0)
    assert not torch.allclose(site(x, priors(), torch.rand(2, 1, 20, 20)), x)


@pytest.mark.parametrize("kwargs", [{"modules": ()}, {"modules": ("warp",)}, {"max_grid": 0}])
def test_site_modulator_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        SiteModulator(channels=8, prior_dim=D, **kwargs)


@pytest.mark.parametrize("cls, kwargs", [(DynamicConv, {"kernel_size": 2}), (DynamicConv, {"num_kernels": 0}),
                                         (DeformableSampling, {"groups": 3}), (DeformableSampling, {"radius": 0})])
def test_module_bad_arguments(cls, kwargs):
    with pytest.raises(ValueError):
        cls(dim=16, prior_dim=D, **kwargs)


def test_spatial_attention_needs_a_map_when_configured():
    with pytest.raises(ValueError, match="location map"):
        SpatialAttention(dim=8, prior_dim=D)(torch.randn(1, 8, 4, 4), priors(1), None)

import math

import pytest
import torch

from medseg_r.perception import DeformableSampling, DynamicConv, SiteModulator, SpatialAttention
from medseg_r.perception.common import GROUP_INDEX

D = 32


def priors(B=2, F=3, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"tokens": torch.randn(B, F, 4, D, generator=g),
            "positive": torch.tensor([[True, True, False], [False, False, False]])[:B],
            "global": torch.randn(B, D, generator=g)}


def _with_group(base, group, other_seed):
    """``base`` with only ``group``'s tokens (and nothing else) replaced by other values."""
    out = {k: v.clone() for k, v in base.items()}
    out["tokens"][:, :, GROUP_INDEX[group]] = priors(*base["tokens"].shape[:2], seed=other_seed)["tokens"][
        :, :, GROUP_INDEX[group]]
    return out


def test_spatial_attention_is_a_sigmoid_of_token_affinity_plus_the_map():
    att_module = SpatialAttention(dim=4, prior_dim=D)
    z = torch.randn(1, 4, 5, 6)
    p = priors(1)
    location = torch.rand(1, 1, 5, 6)
    out, att = att_module(z, p, location)
    # the documented formula, written out: logsumexp over positive findings + the global token
    q = att_module.query(torch.cat([p["tokens"][0, :2, 0], p["global"]], dim=0))  # [3, r]
    k = att_module.key(z)[0]  # [r, H, W]
    logits = torch.einsum("fr,rhw->fhw", q, k).div(math.sqrt(4)).logsumexp(0)
    expected = torch.sigmoid(logits + att_module.map_weight * (2 * location[0, 0] - 1))
    assert torch.allclose(att[0, 0], expected, atol=1e-6)
    assert torch.allclose(out, z * att, atol=1e-6)


def test_spatial_attention_follows_the_location_map():
    att_module = SpatialAttention(dim=4, prior_dim=D)
    with torch.no_grad():
        att_module.key.bias.zero_()
    z = torch.zeros(1, 4, 8, 8)  # no feature affinity: the map alone decides, with its weight 2
    location = torch.zeros(1, 1, 8, 8)
    location[..., :4] = 1.0
    _, att = att_module(z, priors(1), location)
    base = math.log(3.0)  # logsumexp of three zero affinities (two positive findings + the global token)
    assert torch.allclose(att[0, 0, :, :4], torch.sigmoid(torch.tensor(base + 2.0)).expand(8, 4))
    assert torch.allclose(att[0, 0, :, 4:], torch.sigmoid(torch.tensor(base - 2.0)).expand(8, 4))


@pytest.mark.parametrize("H", [1, 7, 16])
def test_modules_keep_shapes_at_any_grid(H):
    z = torch.randn(2, 16, H, H + 3)
    p = priors()
    out, att = SpatialAttention(dim=16, prior_dim=D)(z, p, torch.rand(2, 1, H, H + 3))
    assert out.shape == z.shape and att.shape == (2, 1, H, H + 3)
    assert torch.isfinite(out).all() and 0 < float(att.detach().min()) and float(att.detach().max()) < 1
    for module in (DynamicConv(dim=16, prior_dim=D), DeformableSampling(dim=16, prior_dim=D)):
        y = module(z, p)
        assert y.shape == z.shape and torch.isfinite(y).all()


def test_dynamic_conv_kernels_follow_the_texture_tokens_only():
    conv = DynamicConv(dim=8, prior_dim=D)
    base = priors(1)
    base["positive"][:] = True
    kernels = conv.kernels(base)
    assert kernels.shape == (1, 8, 1, 3, 3)
    assert not torch.allclose(conv.kernels(_with_group(base, "tex", 1)), kernels, atol=1e-4)
    for other in ("pos", "shape", "meta"):
        assert torch.equal(conv.kernels(_with_group(base, other, 1)), kernels), other
    z = torch.randn(1, 8, 10, 10)
    assert not torch.allclose(conv(z, _with_group(base, "tex", 1)), conv(z, base), atol=1e-4)
    assert torch.equal(conv(z, _with_group(base, "shape", 1)), conv(z, base))


def test_dynamic_conv_output_is_the_documented_formula():
    conv = DynamicConv(dim=4, prior_dim=D, num_kernels=3)
    with torch.no_grad():
        conv.film.weight.normal_()
    p = priors(1)
    p["positive"][:] = False
    z = torch.randn(1, 4, 6, 6)
    texture = p["global"]  # no positive finding: the pooled token is the report's global token
    mix = torch.softmax(conv.mix(texture), dim=-1)[0]
    kernel = (mix[:, None, None, None, None] * conv.bank).sum(0)  # [4, 1, 3, 3]
    expected = torch.nn.functional.gelu(torch.nn.functional.conv2d(z, kernel, padding=1, groups=4))
    expected = expected * (1 + conv.film(texture))[:, :, None, None]
    assert torch.allclose(conv(z, p), expected, atol=1e-5)


def test_deformable_sampling_starts_on_a_ring_and_offsets_follow_the_shape_token():
    mod = DeformableSampling(dim=8, prior_dim=D, groups=4, radius=2.0)
    z = torch.randn(1, 8, 12, 12)
    offsets, modulation = mod.sampling(z, priors(1))
    assert torch.allclose(offsets[0, :, :, 5, 5].norm(dim=1), torch.full((4,), 2.0), atol=1e-5)
    assert torch.allclose(modulation, torch.full_like(modulation, 0.5))
    with torch.no_grad():
        mod.offset.weight.normal_()
    base = priors(1)
    base["positive"][:] = True
    first, _ = mod.sampling(z, base)
    assert not torch.allclose(first, mod.sampling(z, _with_group(base, "shape", 1))[0], atol=1e-4)
    assert torch.equal(first, mod.sampling(z, _with_group(base, "tex", 1))[0])


def test_deformable_sampling_with_zero_offsets_reads_the_neighbour_on_the_ring():
    mod = DeformableSampling(dim=4, prior_dim=D, groups=4, radius=1.0)
    with torch.no_grad():
        mod.proj.weight.copy_(torch.eye(4)[:, :, None, None])
        mod.proj.bias.zero_()
    z = torch.arange(36, dtype=torch.float32).view(1, 1, 6, 6).repeat(1, 4, 1, 1)
    out = mod(z, priors(1))
    # group 0 looks one pixel to the right (angle 0), group 1 one pixel down; modulation is 0.5
    assert torch.allclose(out[0, 0, 2, 2], 0.5 * z[0, 0, 2, 3], atol=1e-4)
    assert torch.allclose(out[0, 1, 2, 2], 0.5 * z[0, 1, 3, 2], atol=1e-4)


def test_site_modulator_is_identity_with_zero_gates_and_not_otherwise():
    site = SiteModulator(channels=24, prior_dim=D, bottleneck=16, max_grid=8)
    x = torch.randn(2, 20, 20, 24)
    same, att = site(x, priors(), torch.rand(2, 1, 20, 20))
    assert torch.equal(same, x) and att.shape == (2, 1, 7, 7)  # modules run on a grid pooled by 3
    with torch.no_grad():
        site.gate["dynamic_conv"].fill_(1.0)
    changed, _ = site(x, priors(), torch.rand(2, 1, 20, 20))
    assert (changed - x).abs().mean() > 1e-3


def test_site_modulator_keeps_the_main_path_dtype_under_autocast():
    site = SiteModulator(channels=24, prior_dim=D, bottleneck=16)
    x = torch.randn(1, 6, 6, 24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = site(x, priors(1), torch.rand(1, 1, 6, 6))
    assert out.dtype == torch.float32 and torch.equal(out, x)
    with torch.no_grad():
        site.gate["spatial_attention"].fill_(1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = site(x, priors(1), torch.rand(1, 1, 6, 6))
    assert out.dtype == torch.float32 and not torch.equal(out, x)


def test_site_modulator_declares_its_gates():
    site = SiteModulator(channels=8, prior_dim=D, modules=("spatial_attention", "deformable"))
    gates = site.gate_parameters()
    assert sorted(gates) == ["gate.deformable", "gate.spatial_attention"]
    assert all(float(g.detach().abs().max()) == 0.0 for g in gates.values())


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


def test_position_features_describe_each_cell_once():
    from medseg_r.perception.common import POSITION_CHANNELS, position_features

    where = position_features(6, 10)
    assert where.shape == (1, POSITION_CHANNELS, 6, 10)
    assert float(where.abs().max()) <= 1.0
    assert torch.allclose(where[0, 0, 0], torch.linspace(-0.9, 0.9, 10))  # x at the cell centres
    assert torch.allclose(where[0, 1, :, 0], torch.linspace(-5 / 6, 5 / 6, 6))  # y
    cells = where[0].flatten(1).t()  # no two cells alike
    assert torch.cdist(cells, cells).add(torch.eye(60)).min() > 0.05


def test_positional_keys_let_a_location_token_name_a_region_without_the_map():
    z = torch.zeros(1, 4, 8, 8)  # featureless: without positions, every cell gets the same logit
    plain = SpatialAttention(dim=4, prior_dim=D, use_map=False)
    _, flat = plain(z, priors(1))
    assert torch.allclose(flat, flat[0, 0, 0, 0].expand_as(flat))
    torch.manual_seed(0)
    positional = SpatialAttention(dim=4, prior_dim=D, use_map=False, positional=True)
    _, att = positional(z, priors(1))
    assert float(att.detach().max() - att.detach().min()) > 1e-3
    moved = _with_group(priors(1), "pos", 5)  # another location token: another region
    assert not torch.allclose(positional(z, moved)[1], att, atol=1e-4)
    assert torch.equal(positional(z, _with_group(priors(1), "tex", 5))[1], att)
    att.sum().backward()
    assert positional.position.weight.grad.abs().sum() > 0

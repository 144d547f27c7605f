"""Wrapping a SAM leaves it untouched, and the priors of a call reach the encoder wherever the call runs:
twice-wrapped SAMs, nn.DataParallel-style replicas, activation checkpointing, several threads."""
import copy
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

from medseg_r import MedSegR, build_model
from medseg_r.backbones import build_backbone

REPORT = "round nodule in the right upper lobe"


def _open_gates(model, value=0.3):
    with torch.no_grad():
        for gate in model.gates().values():
            gate.fill_(value)
    return model


def _hooks(module: nn.Module):
    return [(name, kind) for name, m in module.named_modules()
            for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
            if getattr(m, kind)]


def test_wrapping_the_same_sam_twice_does_not_apply_the_priors_twice():
    sam = build_backbone("sam_tiny").sam.eval()
    first = _open_gates(MedSegR.from_sam(sam))
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        before = first(image, [REPORT])["masks"]
        second = _open_gates(MedSegR.from_sam(sam))
        second.load_state_dict(first.state_dict())
        after_first, after_second = first(image, [REPORT])["masks"], second(image, [REPORT])["masks"]
    assert torch.equal(before, after_first)  # measured 0.037 before the fix: hooks had stacked
    assert torch.equal(after_first, after_second)


def test_unwrap_returns_the_untouched_sam():
    sam = build_backbone("sam_tiny").sam.eval()
    keys = list(sam.state_dict())
    flags = {n: p.requires_grad for n, p in sam.named_parameters()}
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        plain = sam.image_encoder(sam.preprocess(image * 255))
    model = _open_gates(MedSegR.from_sam(sam, freeze="image_encoder"))
    assert not any(p.requires_grad for p in sam.image_encoder.parameters())
    with torch.no_grad():
        model(image, [REPORT])
    back = model.unwrap()
    assert back is sam and _hooks(sam) == [] and list(sam.state_dict()) == keys
    assert {n: p.requires_grad for n, p in sam.named_parameters()} == flags
    with torch.no_grad():
        assert torch.equal(sam.image_encoder(sam.preprocess(image * 255)), plain)


def test_wrapping_adds_no_hook_to_the_sam():
    sam = build_backbone("sam_tiny").sam
    MedSegR.from_sam(sam, decoder_prior="both")
    assert _hooks(sam) == []


def _replica(module: nn.Module) -> nn.Module:
    """What ``torch.nn.parallel.replicate`` makes for one device, on the CPU: each module shallow-copied
    by ``_replicate_for_data_parallel`` (plain attributes and hook dicts shared with the original),
    children replaced by their replicas, parameters set as plain tensors."""
    memo = {m: m._replicate_for_data_parallel() for m in module.modules()}
    for original, replica in memo.items():
        for key, child in original._modules.items():
            replica._modules[key] = None if child is None else memo[child]
        for key, param in original._parameters.items():
            if param is None:
                replica._parameters[key] = None
            else:
                setattr(replica, key, param.detach().clone())
    return memo[module]


def test_data_parallel_replicas_apply_the_priors():
    """Under nn.DataParallel each replica runs in its own thread with copied modules; the priors must
    reach the replica's encoder (before the fix they were dropped without an error)."""
    model = _open_gates(build_model("sam_tiny"))
    image = torch.rand(2, 3, 256, 256)
    reports = [REPORT, "spiculated mass in the left lower lobe"]
    with torch.no_grad():
        expected = model(image, reports)["masks"]
        plain = model(image, ["", ""])["masks"]
        replicas = [_replica(model), _replica(model)]
    outputs = [None, None]

    def run(i):  # as torch.nn.parallel.parallel_apply does: one thread per replica
        with torch.no_grad():
            outputs[i] = replicas[i](image[i:i + 1], reports[i:i + 1])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = torch.cat([o["masks"] for o in outputs])
    assert torch.allclose(got, expected, atol=1e-5)
    assert (expected - plain).abs().max() > 1e-3  # the report really changes these masks


@pytest.mark.parametrize("backbone", ["sam_tiny", "litemedsam"])
def test_activation_checkpointing_gives_the_same_outputs_and_gradients(backbone):
    torch.manual_seed(0)
    plain = _open_gates(build_model(backbone, freeze="none", pretrained=False))
    ckpt = copy.deepcopy(plain)
    ckpt.config = ckpt.config.replace(activation_checkpointing=True)
    image = torch.rand(1, 3, 256, 256)
    results = []
    for model in (plain, ckpt):
        model.train()
        out = model(image, [REPORT])["masks"]
        out.square().mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                       if p.grad is not None}))
    (a, grads_a), (b, grads_b) = results
    assert torch.allclose(a, b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and any(k.startswith("perception.") for k in grads_a)
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4), name


def test_activation_checkpointing_option_is_saved_with_the_model(tmp_path):
    from medseg_r.model import load_model, save_model

    model = build_model("sam_tiny", activation_checkpointing=True)
    save_model(model, tmp_path / "m.ckpt")
    assert load_model(tmp_path / "m.ckpt").config.activation_checkpointing is True


def _state(model):
    """Every plain attribute of every module (what a forward pass could leave behind)."""
    return {name: {k: v for k, v in vars(m).items() if not k.startswith("_")} for name, m in model.named_modules()}


def test_forward_and_predict_leave_no_state_on_the_modules():
    model = _open_gates(build_model("sam_tiny"))
    before = copy.deepcopy(_state(model))
    model(torch.rand(1, 3, 256, 256), [REPORT])
    model.predict(np.random.rand(64, 64).astype(np.float32), REPORT)
    after = _state(model)
    assert after.keys() == before.keys()
    for name in before:
        assert set(before[name]) == set(after[name]), name
        for key, value in before[name].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, after[name][key]), (name, key)


def test_predict_never_switches_modes():
    model = build_model("sam_tiny")
    assert model.training is False  # a built model is in eval mode
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        model.predict(np.zeros((32, 32), np.uint8), REPORT)
    assert model.training is True


def test_threads_predicting_at_once_get_their_own_results():
    model = _open_gates(build_model("sam_tiny"))
    rng = np.random.default_rng(0)
    cases = [(torch.from_numpy(rng.random((1, 3, 96, 96), dtype=np.float32)), text) for text in (
        REPORT, "ill-defined opacity in the left lower zone", "mass in the right lung base",
        "small nodule, left upper lobe")]
    with torch.no_grad():
        expected = [model(image, [text]) for image, text in cases]
    results = {}

    def work(i):
        with torch.no_grad():
            for _ in range(3):
                results.setdefault(i, []).append(model(*cases[i][:1], [cases[i][1]]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outs in results.items():
        for out in outs:
            assert torch.allclose(out["masks"], expected[i]["masks"], atol=1e-5)
            assert torch.allclose(out["attention"], expected[i]["attention"], atol=1e-6)
    attention = [e["attention"] for e in expected]
    assert all((attention[0] - a).abs().max() > 1e-3 for a in attention[1:])  # the cases really differ


def test_medsegr_takes_a_backbone_and_from_sam_a_sam_module():
    # MedSegR(sam) and MedSegR("sam_tiny") failed with AttributeError: 'Sam' object has no attribute 'sam'
    from medseg_r import MedSegR
    from medseg_r.backbones import build_backbone

    backbone = build_backbone("sam_tiny", img_size=64)
    for wrong in (backbone.sam, "sam_tiny"):
        with pytest.raises(TypeError, match="MedSegR takes a Backbone.*from_sam"):
            MedSegR(wrong)
    with pytest.raises(TypeError, match="from_sam takes the SAM module itself"):
        MedSegR.from_sam(backbone)

import sys

import pytest

from medseg_r import runtime


def test_env_switch_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setattr(runtime, "_done", False)
    monkeypatch.setenv("MEDSEG_R_MALLOC", "default")
    assert runtime.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_accepts_the_setting_and_repeats_are_harmless(monkeypatch):
    monkeypatch.delenv("MEDSEG_R_MALLOC", raising=False)
    assert runtime.keep_freed_memory() is True
    assert runtime.keep_freed_memory() is True


def test_heavy_commands_apply_it_and_light_ones_do_not(monkeypatch):
    from medseg_r import cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1))
    assert cli.main(["parse-report", "round nodule in the right upper lobe", "--json"]) == 0
    assert calls == []
    assert cli.main(["evaluate", "--checkpoint", "missing.ckpt", "--data", "missing", "--out", "x"]) == 2
    assert calls == [1]


def test_the_cpu_is_named_with_its_cpus_and_bfloat16_support(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    line = runtime.cpu_model()
    assert line and line.endswith("CPUs, without bfloat16 instructions")
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    assert runtime.cpu_model().endswith("with bfloat16 instructions")


def test_the_default_training_precision_follows_the_bf16_check(monkeypatch):
    from medseg_r.engine import train

    monkeypatch.setattr(train, "cpu_has_bf16", lambda: False)
    assert train.default_precision(gpu=False) == "32-true"
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: True)
    assert train.default_precision(gpu=False) == "bf16-mixed"
    assert train.default_precision(gpu=True) == "16-mixed"

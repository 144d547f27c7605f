"""``medseg-r serve`` refuses bad settings in one line (exit 2) before loading a model."""

import re
import socket

import pytest

from medseg_r.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-upload-mb", "0"], "--max-upload-mb must be a positive number"),
        (["--max-upload-mb", "nan"], "--max-upload-mb must be a positive number"),
        (["--idle-minutes", "-1"], "--idle-minutes must be a positive number"),
        (["--idle-minutes", "inf"], "--idle-minutes must be a positive number"),
        (["--workers", "0"], "--workers >= 1"),
        (["--port", "70000"], "--port in 0..65535"),
        (["--checkpoint", "CORRUPT", "--port", "0"], "cannot read checkpoint"),
    ],
)
def test_bad_settings_are_one_line_exit_2(tmp_path, capsys, argv, message):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    argv = [str(corrupt) if a == "CORRUPT" else a for a in argv]
    assert main(["serve", "--backbone", "sam_tiny", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and err[0].startswith("medseg-r: error:")
        and re.search(re.escape(message), err[0])
    )


def test_a_taken_port_is_reported_before_the_model_loads(capsys, monkeypatch):
    from medseg_r.cli import common

    def no_model(args):
        raise AssertionError("the model must not load when the port is taken")

    monkeypatch.setattr(common, "model_from_args", no_model)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(f"medseg-r: error: cannot listen on 127.0.0.1:{port}")
        and len(err.splitlines()) == 1
    )


def test_other_hosts_are_warned_about(capsys, monkeypatch):
    import medseg_r.serve

    def refuse(host, port):
        raise OSError(99, "not bound in this test")

    monkeypatch.setattr(medseg_r.serve, "open_socket", refuse)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert (
        "warning: --host 0.0.0.0 lets other machines reach this page" in err and "not bound" in err
    )
    assert main(["serve", "--host", "127.0.0.5", "--port", "0"]) == 2  # loopback: no warning
    assert "warning" not in capsys.readouterr().err


def test_the_server_gets_the_model_its_settings_and_the_checkpoints_name(tmp_path, capsys, monkeypatch):
    import types

    import medseg_r.serve
    from medseg_r.cli import common

    seen = {}
    model = types.SimpleNamespace(backbone_name="sam_tiny")
    monkeypatch.setattr(common, "model_from_args", lambda args: (model, True))

    def run_server(served, config, sock, *, model_info, device):
        seen.update(model=served, workers=config.workers, info=model_info, device=device)
        sock.close()

    monkeypatch.setattr(medseg_r.serve, "run_server", run_server)
    checkpoint = tmp_path / "runs" / "model.ckpt"
    assert main(["serve", "--checkpoint", str(checkpoint), "--port", "0", "--workers", "3",
                 "--device", "cpu"]) == 0
    assert seen == {"model": model, "workers": 3, "device": "cpu",
                    "info": {"backbone": "sam_tiny", "checkpoint": "model.ckpt",
                             "trained_priors": True}}
    assert "note: no MedSeg-R checkpoint" not in capsys.readouterr().err


def test_shipped_weights_bring_their_provenance_and_notice_to_the_page(monkeypatch):
    import types

    import medseg_r.serve
    from medseg_r.cli import common

    seen = {}
    shipped = {"name": "litemedsam_phantom", "notice": "not for clinical use", "trained_on": "phantoms"}
    model = types.SimpleNamespace(backbone_name="litemedsam", shipped_info=shipped)
    monkeypatch.setattr(common, "model_from_args", lambda args: (model, True))

    def run_server(served, config, sock, *, model_info, device):
        seen.update(model_info)
        sock.close()

    monkeypatch.setattr(medseg_r.serve, "run_server", run_server)
    assert main(["serve", "--port", "0"]) == 0
    assert seen["shipped_weights"] == shipped  # as predict writes it into its JSON

"""`medseg-r parse-report` on a batch with a bad line: one message on stderr, an error line in its
place, the rest of the batch read, exit status 1 (0 when every report is read, 2: usage errors)."""
import json

from medseg_r.cli import main
from medseg_r.report.parser import MAX_REPORT_CHARS


def _batch(tmp_path):
    src = tmp_path / "reports.txt"
    too_long = "x" * (MAX_REPORT_CHARS + 1)
    src.write_text(f"No effusion.\n{too_long}\nNodule in the RUL.\n", encoding="utf-8")
    return src


def test_a_line_over_the_limit_is_reported_and_the_batch_goes_on(tmp_path, capsys):
    assert main(["parse-report", "--input", str(_batch(tmp_path)), "--json"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 3
    assert lines[0]["findings"][0]["target"] == "effusion" and lines[0]["findings"][0]["negated"]
    assert lines[1]["line"] == 2 and "200,001 characters" in lines[1]["error"]
    assert "findings" not in lines[1]
    assert lines[2]["findings"][0]["location"]["segment"] == "upper lobe"
    errors = captured.err.splitlines()
    assert errors == ["medseg-r: line 2: report is 200,001 characters long; the limit is 200,000 "
                      "(one report per call)"]


def test_text_output_marks_the_bad_line_too(tmp_path, capsys):
    assert main(["parse-report", "--input", str(_batch(tmp_path)), "--color", "never"]) == 1
    out = capsys.readouterr().out
    assert "line 2: error: report is 200,001 characters long" in out
    assert out.index("effusion") < out.index("line 2: error") < out.index("nodule")


def test_a_clean_batch_exits_0(tmp_path, capsys):
    src = tmp_path / "ok.txt"
    src.write_text("Small R apical PTX.\nNo focal consolidation.\n", encoding="utf-8")
    assert main(["parse-report", "--input", str(src), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    first = json.loads(captured.out.splitlines()[0])["findings"][0]
    assert (first["target"], first["location"]["side"], first["location"]["zones"]) == (
        "pneumothorax", "right", ["upper"])


def test_a_single_text_over_the_limit_exits_1_without_a_traceback(capsys):
    assert main(["parse-report", "y" * (MAX_REPORT_CHARS + 5), "--json"]) == 1
    captured = capsys.readouterr()
    message = "report is 200,005 characters long; the limit is 200,000 (one report per call)"
    assert json.loads(captured.out) == {"error": message}
    assert captured.err == f"medseg-r: report: {message}\n"


def test_a_dash_reads_the_reports_from_standard_input(capsys, monkeypatch):
    import io

    def stdin(data: bytes):
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")

    for argv in (["parse-report", "-", "--json"], ["parse-report", "--input", "-", "--json"]):
        monkeypatch.setattr("sys.stdin", stdin(b"Nodule in the RUL.\nNo effusion.\n"))
        assert main(argv) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(f["target"], f["negated"]) for line in lines for f in line["findings"]] == [
            ("nodule", False), ("effusion", True)]
    # piped bytes are decoded as a file's are: a Windows-1252 "e acute", with the same notice
    monkeypatch.setattr("sys.stdin", stdin("Opacité in the RUL.\n".encode("cp1252")))
    assert main(["parse-report", "-", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["report"] == "Opacité in the RUL."
    assert "standard input is not UTF-8; read as cp1252" in captured.err
    # a standard input without a bytes layer (replaced by a text stream) is read as text
    monkeypatch.setattr("sys.stdin", io.StringIO("No effusion.\n"))
    assert main(["parse-report", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"][0]["negated"]


def test_a_file_named_dash_is_a_file_for_read_text(tmp_path, monkeypatch):
    from medseg_r.io.text import read_text

    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("Nodule in the RUL.")
    assert read_text("-") == "Nodule in the RUL."  # standard input only where a command says so


def test_a_csv_manifest_is_read_by_its_report_column(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,image,mask,report\na,a.png,a_m.png,Nodule in the RUL.\n"
                        "b,b.png,b_m.png,\n")
    assert main(["parse-report", "--input", str(manifest), "--json"]) == 1  # row b has no report
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert rows[0]["findings"][0]["target"] == "nodule" and rows[1]["line"] == 3
    assert "line 3: no report in this row" in captured.err
    (tmp_path / "n.csv").write_text("id,image\na,a.png\n")
    assert main(["parse-report", "--input", str(tmp_path / "n.csv")]) == 2
    assert "needs a 'report' column (it has id, image)" in capsys.readouterr().err

"""medseg_r.io.jsonl: rows with their line numbers, errors that name the line, no torch."""
import os
import subprocess
import sys

import pytest

from medseg_r.io import read_jsonl_rows


def test_rows_keep_their_line_numbers_and_skip_blank_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n\n  \n{"id": "b", "n": 2}\n')
    assert read_jsonl_rows(str(path)) == [(1, {"id": "a"}), (4, {"id": "b", "n": 2})]


@pytest.mark.parametrize("line, message", [("{not json", "line 2: not JSON"),
                                           ("[1, 2]", "line 2: expected a JSON object, got list"),
                                           ('"text"', "line 2: expected a JSON object, got str")])
def test_a_bad_line_is_a_value_error_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_jsonl_rows(str(path))
    assert str(path) in str(info.value)


def test_the_modules_that_read_manifests_without_a_model_do_not_import_torch():
    code = ("import sys, medseg_r.io, medseg_r.data.phantom, medseg_r.data.phantom.figure, "
            "medseg_r.benchmarks.breakdown, medseg_r.describe.recovery; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.strip() == "False", out.stderr

"""medseg_r.io.rows: a manifest's rows by its ending, numbered by their line; clear errors."""
import csv

import pytest

from medseg_r.io import read_rows


def test_read_rows_chooses_by_ending_and_numbers_rows_by_their_line(tmp_path):
    jsonl, csv_file = tmp_path / "m.JSONL", tmp_path / "m.csv"
    jsonl.write_text('{"id": "a"}\n\n{"id": "b"}\n')
    csv_file.write_text("id,image\na,a.png\nb,b.png\n")
    assert read_rows(str(jsonl)) == [(1, {"id": "a"}), (3, {"id": "b"})]
    assert read_rows(str(csv_file)) == [(2, {"id": "a", "image": "a.png"}), (3, {"id": "b", "image": "b.png"})]
    other = tmp_path / "m.txt"
    other.write_text("id\na\n")
    with pytest.raises(ValueError, match=r"must be \.csv or \.jsonl"):
        read_rows(str(other))


def test_a_csv_the_csv_module_cannot_read_is_a_value_error_naming_file_and_line(tmp_path, monkeypatch):
    import medseg_r.io.csv_rows as csv_rows

    path = tmp_path / "m.csv"
    path.write_text("id,report\na,short\nb," + "x" * 200 + "\n")
    before = csv.field_size_limit(100)  # a field over the csv module's limit
    monkeypatch.setattr(csv_rows, "FIELD_LIMIT", 100)
    try:
        with pytest.raises(ValueError, match=r"near line 3 \(field larger than field limit") as info:
            read_rows(str(path))
    finally:
        csv.field_size_limit(before)
    assert str(path) in str(info.value)


def test_a_long_csv_field_is_read(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,report\na," + "x" * 200_000 + "\n")  # over the csv module's default limit
    before = csv.field_size_limit()
    assert read_rows(str(path))[0][1]["report"] == "x" * 200_000
    assert csv.field_size_limit() == before  # the process's limit is left as it was

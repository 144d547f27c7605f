import pytest

from medseg_r.io.text import decode_text, read_text


@pytest.mark.parametrize("data, text, encoding", [
    ("Nodule in the right upper lobe.".encode("utf-8"), "Nodule in the right upper lobe.", "utf-8-sig"),
    (b"\xef\xbb\xbf" + "Nodule, 12 mm.".encode("utf-8"), "Nodule, 12 mm.", "utf-8-sig"),  # the BOM is dropped
    ("Rundherd im rechten Unterlappen, 12 mm, glatt begrenzt, \u00f6dem.".encode("cp1252"),
     "Rundherd im rechten Unterlappen, 12 mm, glatt begrenzt, \u00f6dem.", "cp1252"),
    (bytes([0x81, 0x41]), "\x81A", "latin-1"),  # 0x81 is undefined in cp1252: Latin-1 decodes anything
])
def test_text_files_decode_without_replacement_characters(data, text, encoding):
    assert decode_text(data) == (text, encoding)


def test_a_file_that_is_not_utf8_is_read_with_a_notice(tmp_path, capsys):
    path = tmp_path / "report.txt"
    path.write_bytes("L\u00e9sion nodulaire du lobe sup\u00e9rieur droit.".encode("latin-1"))
    assert read_text(str(path)) == "L\u00e9sion nodulaire du lobe sup\u00e9rieur droit."
    assert "is not UTF-8; read as cp1252" in capsys.readouterr().err
    path.write_bytes(b"\xef\xbb\xbfNodule.")
    assert read_text(str(path)) == "Nodule." and capsys.readouterr().err == ""

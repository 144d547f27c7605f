import os
import stat

import pytest

from medseg_r.io import atomic_write


def test_written_file_has_the_mode_of_a_plain_open(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_write(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write("x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
    assert path.read_text() == "x"


def test_a_failed_write_leaves_neither_file_nor_partial(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            with open(tmp, "w") as handle:
                handle.write("half")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []

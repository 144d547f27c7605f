import pytest

from medseg_r.io.output_folders import is_plain_file_name


@pytest.mark.parametrize("name", ["case_001", "scan 1", "patient.7", "ünïcode", "-x"])
def test_plain_names_name_files(name):
    assert is_plain_file_name(name)


@pytest.mark.parametrize("name", ["", "   ", ".", "..", "../img", "a/b", "a\\b", "/abs", "nul\0name"])
def test_names_that_reach_outside_the_folder_or_name_nothing_are_not_plain(name):
    # the case ids of evaluate, predict --manifest and predict's case names all go through this one rule
    # (three rules before: a Windows folder or a blank id passed predict --manifest's)
    assert not is_plain_file_name(name)

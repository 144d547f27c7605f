import pytest


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory):
    from medseg_r.data.phantom import make_phantom

    out = tmp_path_factory.mktemp("phantom")
    make_phantom(str(out), n=40, seed=3, size=64, progress=False)
    return str(out)

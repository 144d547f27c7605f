import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def phantom_256(tmp_path_factory):
    """A 60-case phantom generation at 256 px (seed 0), drawn once for every test that reads one."""
    from medseg_r.data.phantom import make_phantom

    out = tmp_path_factory.mktemp("phantom_256")
    make_phantom(str(out), n=60, seed=0, size=256, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_model_factory():
    from medseg_r import build_model

    def make(**options):
        return build_model("sam_tiny", **options)

    return make

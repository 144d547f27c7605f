import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model_factory():
    from medseg_r import build_model

    def make(**options):
        return build_model("sam_tiny", **options)

    return make

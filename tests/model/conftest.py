import pytest


@pytest.fixture
def box_choice_calls(monkeypatch):
    """The keyword arguments of every call to ``boxes_from_map`` while the test runs (the real
    function still does the work): what a model handed its box choice."""
    import medseg_r.model.box_prompts as box_prompts

    calls = []
    real = box_prompts.boxes_from_map

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(box_prompts, "boxes_from_map", spy)
    return calls

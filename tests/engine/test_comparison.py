"""The comparison's rows and when a finished run is reused."""
import os

from medseg_r.engine.comparison import ROWS, same_run


def _config(**changes):
    config = {"data": "/d", "out": "/runs/a", "feature_cache": "/c", "seed": 0, "epochs": 6,
              "model_options": {"box_input": "image"}, "resume": "auto"}
    config.update(changes)
    return config


def test_a_moved_run_or_linked_data_is_the_same_run(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    link = tmp_path / "link"
    os.symlink(data, link)
    assert same_run(_config(data=str(data), out="/x"), _config(data=str(link), out="/y", resume=None))


def test_a_changed_seed_data_or_option_is_another_run(tmp_path):
    assert not same_run(_config(), _config(seed=1))
    assert not same_run(_config(), _config(data="/other"))
    assert not same_run(_config(), _config(model_options={"box_input": "embedding"}))


def test_medseg_r_and_its_baselines_differ_only_in_what_they_read():
    medseg_r = dict(ROWS["medseg_r"].options)
    for name in ("none", "text_token"):
        options = dict(ROWS[name].options)
        assert options.pop("priors") == name and options == medseg_r
        assert ROWS[name].batch_size == ROWS["medseg_r"].batch_size
        assert ROWS[name].objective == ROWS["medseg_r"].objective and ROWS[name].lr == ROWS["medseg_r"].lr


def test_the_attribute_rows_differ_only_in_what_they_read():
    medseg_r = dict(ROWS["medseg_r_attr"].options)
    assert medseg_r.pop("priors") == "structured"
    assert medseg_r["attribute_head"] and medseg_r["box_match"]
    for name in ("none", "text_token"):
        row = ROWS[f"{name}_attr"]
        options = dict(row.options)
        assert options.pop("priors") == name and options == medseg_r
        assert (row.batch_size, row.objective, row.lr) == (
            ROWS["medseg_r_attr"].batch_size, ROWS["medseg_r_attr"].objective, ROWS["medseg_r_attr"].lr)


def test_each_ablation_switches_off_one_module_of_its_own_base():
    from medseg_r.engine.comparison import ABLATIONS

    pairs = [(base, name) for base, names in ABLATIONS.items() for name in names]
    assert {"medseg_r", "medseg_r_attr"} <= set(ABLATIONS)
    for base, name in pairs:
        options, own = dict(ROWS[name].options), dict(ROWS[base].options)
        switched = {k for k in set(options) | set(own) if options.get(k) != own.get(k)}
        assert len(switched) == 1, (name, switched)
        (key,) = switched
        assert options[key] is False and own.get(key, True) is not False, (name, key)
        assert (ROWS[name].batch_size, ROWS[name].objective, ROWS[name].lr, ROWS[name].shift) == (
            ROWS[base].batch_size, ROWS[base].objective, ROWS[base].lr, ROWS[base].shift)


def test_each_ablation_names_a_subset_its_module_is_built_for():
    from medseg_r.engine.comparison import ABLATIONS, built_for
    from medseg_r.engine.evaluate import SUBSETS

    expected = {"spatial_attention": "by_location", "location_map": "by_location",
                "dynamic_conv": "by_texture", "deformable": "by_shape"}
    for base, names in ABLATIONS.items():
        for name in names:
            (switched,) = [k for k, v in ROWS[name].options.items() if v is False]
            assert built_for(name) == expected[switched] and built_for(name) in SUBSETS, name


def test_each_variant_adds_one_mechanism_to_its_base():
    from medseg_r.engine.comparison import VARIANTS

    for variant, base in VARIANTS.items():
        options, own = dict(ROWS[variant].options), dict(ROWS[base].options)
        added = {k for k in set(options) | set(own) if options.get(k) != own.get(k)}
        assert len(added) == 1 and options[added.pop()] is True, variant
        assert (ROWS[variant].batch_size, ROWS[variant].objective, ROWS[variant].lr) == (
            ROWS[base].batch_size, ROWS[base].objective, ROWS[base].lr)

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
    assert same_run(_config(progress=True), _config(progress=False))  # display only


def test_a_changed_seed_data_or_option_is_another_run(tmp_path):
    assert not same_run(_config(), _config(seed=1))
    assert not same_run(_config(), _config(data="/other"))
    assert not same_run(_config(), _config(model_options={"box_input": "embedding"}))
    assert not same_run(_config(), _config(image_augment=1.0))


def test_a_run_from_before_image_augment_is_the_same_run_with_it_off():
    assert same_run(_config(), _config(image_augment=0.0))


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


def test_the_tuned_rows_share_one_decoder_and_keep_their_localisers():
    tuned = {"medseg_r_attr_tuned": "medseg_r_attr", "none_attr_tuned": "none_attr",
             "text_token_attr_tuned": "text_token_attr"}
    for name, localiser in tuned.items():
        assert ROWS[name].parts == (localiser, "decoder_boxes")
    decoder = ROWS["decoder_boxes"]
    assert decoder.objective == "reference_boxes" and decoder.options["priors"] == "none"
    assert not decoder.flip and decoder.shift == 0  # no flipped image: no second encoder pass


def test_a_row_of_parts_joins_the_first_model_with_the_second_decoder(tmp_path):
    import pytest
    import torch

    from medseg_r import build_model
    from medseg_r.checkpoint import save_model
    from medseg_r.engine.comparison import combine_parts, train_row

    torch.manual_seed(0)
    localiser = build_model("sam_tiny", img_size=64, freeze="backbone")
    decoder = build_model("sam_tiny", img_size=64, priors="none", matched_capacity=False,
                          inject_at=[])
    with torch.no_grad():
        for p in decoder.sam.mask_decoder.parameters():
            p.add_(0.01)
    models = {"medseg_r_attr": str(tmp_path / "a.ckpt"), "decoder_boxes": str(tmp_path / "d.ckpt")}
    save_model(localiser, models["medseg_r_attr"])
    save_model(decoder, models["decoder_boxes"])
    out = str(tmp_path / "joined")
    first = combine_parts("medseg_r_attr_tuned", models=models, out=out)
    joined = first["loaded"]
    assert not first["reused"]
    for key, value in joined.sam.mask_decoder.state_dict().items():
        assert torch.equal(value, decoder.sam.mask_decoder.state_dict()[key])
    own = {k: v for k, v in localiser.state_dict().items() if not k.startswith("sam.")}
    assert all(torch.equal(joined.state_dict()[k], v) for k, v in own.items())
    assert torch.equal(joined.sam.image_encoder.patch_embed.proj.weight,
                       localiser.sam.image_encoder.patch_embed.proj.weight)
    assert joined.config.freeze == "image_encoder"  # the decoder counts among the trained parameters
    assert combine_parts("medseg_r_attr_tuned", models=models, out=out)["reused"]
    os.utime(models["decoder_boxes"], (1, 1))  # a changed part joins again
    assert not combine_parts("medseg_r_attr_tuned", models=models, out=out)["reused"]
    with pytest.raises(ValueError, match="parts"):
        train_row("medseg_r_attr_tuned", data=str(tmp_path), out=out, seed=0, epochs=1)


def test_a_finished_run_of_other_settings_is_refused_not_relabelled(tmp_path):
    """A finished run whose settings differ (other than more epochs) is not resumed: resuming would
    keep its weights and stamp them with the new settings."""
    import dataclasses

    import pytest

    from medseg_r import build_model
    from medseg_r.checkpoint import save_model
    from medseg_r.engine.comparison import run_differences, train_row
    from medseg_r.engine.train import TrainConfig

    out = tmp_path / "run"
    out.mkdir()
    old = dataclasses.asdict(TrainConfig(data=str(tmp_path), out=str(out), seed=0, lr=5e-4))
    save_model(build_model("sam_tiny", img_size=64), out / "model.ckpt", extra={"train_config": old})
    with pytest.raises(ValueError, match=r"holds a finished run of row 'none_attr' with other settings \(.*"
                                         r"backbone: 'sam_tiny' -> 'litemedsam'"):
        train_row("none_attr", data=str(tmp_path), out=str(out), seed=0, epochs=1)
    assert run_differences(_config(), _config(epochs=9)) == {"epochs": (6, 9)}
    # a run from before an option is the same run when the option is wanted at its default
    from medseg_r.engine.comparison import other_run_changes

    assert other_run_changes(_config(), _config(epochs=9, shift_augment=0, describe_missing=False)) == {}
    assert other_run_changes(_config(), _config(shift_augment=3)) == {"shift_augment": (None, 3)}
    assert run_differences(_config(), _config(progress=True, out="/elsewhere")) == {}

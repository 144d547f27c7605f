"""Give the shipped models the mask decoder of a decoder_boxes run (the accuracy benchmark's
``decoder_boxes`` row: LiteMedSAM's decoder fine-tuned on jittered boxes around the reference
lesions, no report read), stored once as the shared part ``weights/decoders/litemedsam_phantom.pt``.

The localisers stay the shipped ones (the accuracy benchmark's seed-0 runs of medseg_r_attr,
none_attr and text_token_attr), so each shipped file becomes that seed's ``*_attr_tuned`` row. Run
``python -m medseg_r.benchmarks.shipped_scores --out DIR --write`` afterwards: the stored figures
are those of the old decoder until then.

    python docs/results/amd_epyc_avx512/scripts/ship_tuned_decoder.py DIR/runs/decoder_boxes_seed0/model.ckpt

``--replace``: the shared decoder file exists already (with these or other weights, or in an older
format): the three models are read with it first, then it is written anew.

All four files are written to a staging folder first (``weights/.staging-*``, on the weights' file
system) and moved into place, each by a rename, only when every one of them has been written: a
failure while they are computed or written leaves the shipped files as they were (a killed run
leaves its staging folder, which git ignores and which may be deleted).
"""
import argparse
import os
import shutil
import tempfile

from medseg_r.backbones.weights import torch_load
from medseg_r.checkpoint import load_model, save_model
from medseg_r.model.shipped import decoder_path, export_shipped, load_shipped, shipped_path

NAMES = ("litemedsam_phantom", "litemedsam_phantom_none", "litemedsam_phantom_text_token")
# the command that trains what these files hold: each localiser row and decoder_boxes, joined
TUNED_COMMAND = ("python -m medseg_r.benchmarks.accuracy --n 2000 --extra-n 6000 --epochs 6 --seeds 0 "
                 "--precision 32-true --rows medseg_r_attr_tuned none_attr_tuned text_token_attr_tuned")
DECODER_DATA = ("its mask decoder fine-tuned on jittered boxes around the reference lesions of the "
                "1,400 training cases of seed 0 (decoder_boxes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("decoder_run", help="a decoder_boxes run's model.ckpt")
    parser.add_argument("--name", default="litemedsam_phantom", help="the shared decoder part's name")
    parser.add_argument("--replace", action="store_true", help="write the shared decoder file anew")
    args = parser.parse_args()
    run = torch_load(args.decoder_run)["extra"]
    config = run["train_config"]
    decoder = load_model(args.decoder_run).sam.mask_decoder.state_dict()
    recipe_of_decoder = {"row": "decoder_boxes", "objective": config["objective"],
                         "epochs": config["epochs"], "steps": run.get("global_step"),
                         "batch_size": config["batch_size"], "lr": config["backbone_lr"],
                         "seed": config["seed"], "precision": config["precision"]}
    shipped = {name: load_shipped(name) for name in NAMES}
    weights = os.path.dirname(shipped_path(NAMES[0]))
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=weights) as tmp:  # moves are renames
        staged = os.path.join(tmp, "weights")
        if not args.replace and os.path.isfile(decoder_path(args.name)):  # compared, not replaced
            os.makedirs(os.path.dirname(decoder_path(args.name, staged)))
            shutil.copy2(decoder_path(args.name), decoder_path(args.name, staged))
        written = []
        for name in NAMES:
            model, info = shipped[name]
            model.sam.mask_decoder.load_state_dict(decoder)
            model.set_freeze("image_encoder")
            path = os.path.join(tmp, f"{name}.ckpt")
            save_model(model, path)
            trained_on = info["trained_on"]
            if DECODER_DATA not in trained_on:
                trained_on = f"{trained_on}; {DECODER_DATA}"
            row = info["recipe"]["row"]
            row = row if row.endswith("_tuned") else row + "_tuned"  # run again: the same file
            localiser_command = info["recipe"].get("localiser_command") or info["recipe"]["command"]
            recipe = {**info["recipe"], "row": row, "command": TUNED_COMMAND,
                      "localiser_command": localiser_command, "decoder": recipe_of_decoder}
            written.append(export_shipped(path, name, trained_on=trained_on, recipe=recipe,
                                          metrics=info["metrics"], decoder=args.name,
                                          directory=staged))
        os.makedirs(os.path.dirname(decoder_path(args.name)), exist_ok=True)
        os.replace(decoder_path(args.name, staged), decoder_path(args.name))
        for path in written:
            target = os.path.join(weights, os.path.relpath(path, staged))
            os.replace(path, target)
            print(target)


if __name__ == "__main__":
    main()

"""Dice of ``medseg-r predict --example``'s mask against the example generator's own nodule mask
(README: "a 134 px mask on the 122 px nodule ... Dice 0.90").

    medseg-r predict --example --out DIR && python docs/results/amd_epyc_avx512/scripts/example_dice.py DIR
"""
import os
import sys

import numpy as np
from PIL import Image

from medseg_r.example import chest_like_image


def main() -> None:
    _, truth = chest_like_image()
    truth = truth > 0
    mask = np.array(Image.open(os.path.join(sys.argv[1], "example_mask.png"))) > 0
    inside = int((mask & truth).sum())
    print(f"mask {int(mask.sum())} px, nodule {int(truth.sum())} px, {inside} px inside: "
          f"Dice {2 * inside / (mask.sum() + truth.sum()):.2f}")


if __name__ == "__main__":
    main()

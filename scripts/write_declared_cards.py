"""Rewrites the cards of the zoo's declared entries and the zoo's index.

A declared entry ships its recipe without weights; its `README.md` and
`metadata.json` (how to build it, what that costs, estimated from FLOPs) are
written by `ek.zoo.card.write_declared_card`, with the reason kept from its
current metadata. Then `zoo/README.md` is rewritten by `ek.zoo.write_index`.

    python scripts/write_declared_cards.py
"""

from __future__ import annotations

import json

from ebgan_keras import zoo
from ebgan_keras.zoo import card
from ebgan_keras.zoo import stages

#: Images of the training split of each declared entry's data set (the
#: steps of an epoch, for the time estimate), and the image folder a user
#: passes with `--data`. CelebA's official partition: 162,770 train, 19,867
#: validation, 19,962 test images (TFDS `celeb_a` splits the same way).
DATA = {"celeb_a": {"train_images": 162_770, "data_folder": "img_align_celeba"}}


def main() -> None:
    for entry in zoo.list_entries():
        if entry["weights"] != "absent":
            continue
        folder = zoo.entry_dir(entry["name"])
        metadata = json.loads((folder / "metadata.json").read_text())
        config = stages.read_config(entry["name"])
        card.write_declared_card(
            config,
            str(folder),
            metadata["weights"]["reason"],
            **DATA.get(config["training"]["data"], {}),
        )
        print(f"wrote {folder / 'README.md'}")
    zoo.write_index()
    print("wrote zoo/README.md")


if __name__ == "__main__":
    main()

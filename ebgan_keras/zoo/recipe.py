"""Moved: the zoo's recipe code is split by purpose.

- `ebgan_keras.zoo.stages`: the stages (train through the one training
  driver, export, evaluate) and `build` / `run_recipe`;
- `ebgan_keras.zoo.card`: `metadata.json` and the model card;
- `ebgan_keras.zoo.entries`: file names, finding, verifying and loading;
- `ebgan_keras.run.builder`: `build_model` and `compile_model` (were
  `create_model` and `compile_model` here) of any config.

This module keeps the names of the previous release importable.
"""

from ebgan_keras.files import file_sha256
from ebgan_keras.run.config import FORMAT_VERSION
from ebgan_keras.zoo.card import FID_NOISE
from ebgan_keras.zoo.card import write_card
from ebgan_keras.zoo.card import write_declared_card
from ebgan_keras.zoo.entries import CARD_FILE
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import CURVES_FILE
from ebgan_keras.zoo.entries import DISCRIMINATOR_FILE
from ebgan_keras.zoo.entries import GENERATOR_FILE
from ebgan_keras.zoo.entries import GOLDEN_ATOL
from ebgan_keras.zoo.entries import GOLDEN_FILE
from ebgan_keras.zoo.entries import GOLDEN_SAMPLES
from ebgan_keras.zoo.entries import GRID_FILE
from ebgan_keras.zoo.entries import METADATA_FILE
from ebgan_keras.zoo.entries import weight_file
from ebgan_keras.zoo.stages import compile_options
from ebgan_keras.zoo.stages import ddls_sweep
from ebgan_keras.zoo.stages import evaluate
from ebgan_keras.zoo.stages import export
from ebgan_keras.zoo.stages import golden_outputs
from ebgan_keras.zoo.stages import has_convolutions
from ebgan_keras.zoo.stages import read_config
from ebgan_keras.zoo.stages import run_recipe
from ebgan_keras.zoo.stages import to_feature_size
from ebgan_keras.zoo.stages import train

#: The previous release's two weight files (files are named by role now:
#: `entries.weight_file`).
WEIGHT_FILES = {role: weight_file(role) for role in ("generator", "discriminator")}

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "CURVES_FILE",
    "DISCRIMINATOR_FILE",
    "FID_NOISE",
    "FORMAT_VERSION",
    "GENERATOR_FILE",
    "GOLDEN_ATOL",
    "GOLDEN_FILE",
    "GOLDEN_SAMPLES",
    "GRID_FILE",
    "METADATA_FILE",
    "WEIGHT_FILES",
    "compile_options",
    "ddls_sweep",
    "evaluate",
    "export",
    "file_sha256",
    "golden_outputs",
    "has_convolutions",
    "read_config",
    "run_recipe",
    "to_feature_size",
    "train",
    "write_card",
    "write_declared_card",
]

"""The `ebgan-keras` command line: train, sample, evaluate, export, sweep, zoo.

Commands:

- `ebgan-keras train CONFIG --data DATA --epochs N --out RUN_DIR`: train a
  built-in config (`ebgan_keras/configs/*.json`), a zoo entry's
  recipe, or any config file (`--config FILE.json`) through the one training
  driver (`ebgan_keras.run.training`); the run folder holds `model.keras`,
  `history.json`, `samples.png`, `curves.png`, per-epoch grids in `samples/`
  and, while training, the checkpoint that makes the same command resume.
- `ebgan-keras sample FILE_OR_ENTRY --sampler ddls --num 64 --out samples.png`
  (`--animate chains.gif` for DDLS's chains).
- `ebgan-keras eval FILE_OR_ENTRY --metrics fid,kid --num 10000 --reference mnist`
  (`--sampler NAME` to score a latent sampler's samples).
- `ebgan-keras export FILE_OR_ENTRY PATH --sampler ddls`: a TensorFlow
  SavedModel of the model and its sampler (`ebgan_keras.run.export`).
- `ebgan-keras sweep GRID.json --out SWEEP_DIR`: a hyperparameter sweep on
  Ray Tune (`ebgan_keras.run.sweeps`), every trial a run of the one driver.
- `ebgan-keras zoo list|describe NAME|build NAME`: delegates to `ebgan_keras.zoo`.

Layout: one module per command (`train`, `sample`, `evaluate` for `eval`,
`export`, `sweep`, `zoo`), each with `add_parser(subparsers)` and
`run(args) -> int`; the flags and validators they share in `options`; model
loading in `models`, the sampler of `sample` and `eval` in `sampling`; the
errors in `errors`; the parser and `main` in `app`.

Start-up: nothing here imports anything heavy. The arguments are parsed
first; then `KERAS_BACKEND` (from `--backend`) and TensorFlow's log level are
set, and only then is Keras imported, so `--backend` needs no second process
and no TensorFlow C++ log line reaches the user (`ebgan-keras --verbose ...`
shows them, and full tracebacks).
"""

from ebgan_keras.cli.app import build_parser
from ebgan_keras.cli.app import main

__all__ = ["build_parser", "main"]

"""The parser and entry point of `ebgan-keras`: one module per command."""

from __future__ import annotations

import argparse
import os
import sys

from ebgan_keras.cli import evaluate
from ebgan_keras.cli import export
from ebgan_keras.cli import options
from ebgan_keras.cli import sample
from ebgan_keras.cli import sweep
from ebgan_keras.cli import train
from ebgan_keras.cli import zoo
from ebgan_keras.cli.errors import PeerFailure
from ebgan_keras.cli.errors import UsageError
from ebgan_keras.cli.errors import user_errors

MAIN_EXAMPLE = """examples:
  ebgan-keras train ebgan_pt --data mnist_subset --epochs 5 --out runs/quickstart
  ebgan-keras sample runs/quickstart/model.keras --sampler ddls --out ddls.png
  ebgan-keras eval runs/quickstart/model.keras --metrics fid,kid --num 2000 \\
      --reference mnist
  ebgan-keras train --help

`python -m ebgan_keras` runs the same command line."""

#: The command modules by name, in the order `--help` lists them; each has
#: `add_parser(subparsers)` and `run(args) -> int`.
COMMANDS = {
    "train": train,
    "sample": sample,
    "eval": evaluate,
    "export": export,
    "sweep": sweep,
    "zoo": zoo,
}


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser of `ebgan-keras`, with every command's help.

    Returns:
        An `argparse.ArgumentParser`.

    Example:

    >>> args = build_parser().parse_args(["sample", "model.keras"])
    >>> args.command, args.sampler, args.num
    ('sample', 'none', 64)
    """
    parser = argparse.ArgumentParser(
        prog="ebgan-keras",
        description="Energy-based GANs (EBGAN, EBGAN-PT, BEGAN, MAGAN) for Keras 3 "
        "on TensorFlow, JAX and PyTorch: train, sample, evaluate.",
        epilog=MAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_backend(parser, None)
    parser.add_argument(
        "--verbose",
        dest="debug",
        action="store_true",
        help="show full tracebacks and TensorFlow's log lines",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def _set_backend(backend: str | None) -> None:
    """Sets the Keras backend before Keras is imported (no second process)."""
    if backend is None:
        return
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = backend
        return
    if keras.backend.backend() != backend:
        raise UsageError(
            f"--backend {backend}: this process has already imported Keras with "
            f"the {keras.backend.backend()!r} backend; run the command in a new "
            f"process (or set KERAS_BACKEND={backend} before importing Keras). "
            f"Received: --backend {backend}"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ebgan-keras`; returns the exit code.

    Args:
        argv: list of str. Arguments without the program name. Defaults to
            `sys.argv[1:]`.

    Returns:
        0 on success, 2 on a user error (bad arguments, missing files or
        data, an unwritable or busy folder, a full disk, a diverged run),
        1 on an internal error, 3 when another process of a distributed
        run was lost, each printed as one line without a traceback
        unless `--verbose` is given, and 130 when interrupted.

    Example:

    ```python
    from ebgan_keras.cli import main

    main(["train", "ebgan_pt", "--data", "mnist_subset", "--epochs", "5",
          "--out", "runs/quickstart"])
    ```
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not args.debug:
        # Before TensorFlow is imported, or its C++ log lines reach the user.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _set_backend(args.backend)
        if args.command != "zoo" or args.action == "build":
            import ebgan_keras.models  # noqa: F401 - registers the models
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print(
            "\nInterrupted. Rerun the same command to continue where the last "
            "checkpoint ended.",
            file=sys.stderr,
        )
        return 130
    except Exception as error:  # noqa: BLE001 - sorted in `_report`
        if args.debug:
            raise
        return _report(args.command, error)


def _report(command: str, error: Exception) -> int:
    """Prints an error of `command` as one line; returns the exit code."""
    if isinstance(error, PeerFailure):
        print(f"ebgan-keras {command}: error: {error}", file=sys.stderr)
        if "multi-process" in str(error):
            # JAX's shutdown would wait for the lost process at a barrier
            # (and abort after its heartbeat timeout): leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)
        return 3
    if not isinstance(error, user_errors()):
        # A bug of ours, not the user's: still one line, with the way to
        # the traceback.
        print(
            f"ebgan-keras {command}: internal error: "
            f"{type(error).__name__}: {error} (rerun with `ebgan-keras "
            "--verbose ...` for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    message = str(error)
    if isinstance(error, OSError) and error.strerror and not error.filename:
        message = error.strerror
    print(f"ebgan-keras {command}: error: {message}", file=sys.stderr)
    return 2

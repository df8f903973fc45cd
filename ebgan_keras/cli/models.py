"""Loading a model for `sample`, `eval` and `export`: a `.keras` file or a zoo entry."""

from __future__ import annotations

import importlib
import os

from ebgan_keras.cli.errors import UsageError

ZOO_FUNCTIONS = ("list_entries", "describe", "build", "load")


def zoo_module(entry: str | None = None):
    """Imports `ebgan_keras.zoo` lazily; a clear user error if it is missing."""
    try:
        zoo_module = importlib.import_module("ebgan_keras.zoo")
    except ImportError as error:
        what = f"the zoo entry {entry!r}" if entry else "the model zoo"
        raise UsageError(
            f"{what} is not available in this install: the module "
            f"ebgan_keras.zoo cannot be imported ({error}). Pass a .keras file "
            "written by `ebgan-keras train` or `model.save` instead."
        ) from None
    missing = [name for name in ZOO_FUNCTIONS if not hasattr(zoo_module, name)]
    if missing:
        raise UsageError(
            "the model zoo of this install is incomplete: ebgan_keras.zoo lacks "
            f"{', '.join(missing)}."
        )
    return zoo_module


def zoo_call(function, name: str, what: str):
    """Calls a zoo function; errors about the entry become user errors."""
    try:
        return function(name)
    except (KeyError, ValueError, TypeError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise UsageError(f"cannot {what} zoo entry {name!r}: {message}") from None
    except AttributeError as error:
        # A field of the wrong JSON type (e.g. `files` a list, not an object).
        raise UsageError(
            f"cannot {what} zoo entry {name!r}: its metadata.json or config.json "
            f"is malformed (a field of the wrong type: {error})"
        ) from None


def check_energy_gan(model, source: str):
    from ebgan_keras.run.builder import model_classes

    classes = model_classes()
    if not isinstance(model, tuple(classes.values())):
        raise UsageError(
            f"{source} holds a {type(model).__name__}, not an ebgan_keras model "
            f"({', '.join(sorted(classes))})."
        )
    return model


def load_model(entry: str):
    """A model from a `.keras` file, or a zoo entry's (by name or folder)."""
    is_folder = os.path.isfile(os.path.join(entry, "metadata.json"))
    if not os.path.isfile(entry):
        if not is_folder and (
            entry.endswith(".keras") or os.sep in entry or "/" in entry
        ):
            raise UsageError(
                f"no such model file or zoo entry folder. Received: {entry!r}"
            )
        model = zoo_call(zoo_module(entry).load, entry, "load")
        return check_energy_gan(model, f"zoo entry {entry!r}")
    import keras

    import ebgan_keras.models  # noqa: F401 - registers the model classes

    try:
        model = keras.saving.load_model(entry)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a user error
        raise UsageError(f"cannot load {entry!r} as a Keras model: {error}") from None
    return check_energy_gan(model, repr(entry))


def check_output_files(*paths) -> None:
    """Fails at once, naming the folder, where an output file cannot be written."""
    from ebgan_keras import files

    for path in paths:
        if path:
            files.check_writable(os.path.dirname(os.path.abspath(path)))


def default_reference(model) -> str:
    """A zoo entry's own reference data set, else mnist."""
    entry = getattr(model, "zoo_entry", None)
    if entry is None:
        return "mnist"
    recipe = zoo_module(entry).describe(entry)["recipe"]
    return recipe["evaluation"]["reference"]


def load_real(model, name: str, split: str, option: str):
    """Real images of a data set, at the model's image size, as a dataset."""
    import ebgan_keras as ek

    square = model.image_shape[0] == model.image_shape[1]
    try:
        return ek.data.load(
            name,
            split=split,
            batch_size=256,
            shuffle=False,
            drop_remainder=False,
            image_size=model.image_shape[0] if square else None,
            channels=model.image_shape[2],
        )
    except (
        ValueError,
        TypeError,
        ek.data.DatasetUnavailableError,
        ek.data.OfflineDataError,
    ) as error:
        raise UsageError(f"{option} {name!r}: {error}") from None


def calibration_images(model, args, reference: str):
    """The first --num-calibration images of --calibration-split."""
    import numpy as np

    dataset = load_real(model, reference, args.calibration_split, "--reference")
    batches, count = [], 0
    for batch in dataset:
        batches.append(np.asarray(batch))
        count += len(batches[-1])
        if count >= args.num_calibration:
            break
    if count < 2:
        raise UsageError(
            f"--calibration-split {args.calibration_split!r}: the calibration "
            f"needs at least 2 real images of {reference!r}. Received: {count}"
        )
    return np.concatenate(batches, axis=0)[: args.num_calibration]

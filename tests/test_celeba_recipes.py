"""The CelebA recipes end to end, shrunk, on synthetic data in CelebA's layouts.

CelebA is not on this machine (no network), so the two declared entries
(`ebgan_pt_celeba`, `began_celeba`) run here on 40 synthetic 178x218 JPEGs:
as the image folder CelebA distributes (`img_align_celeba/000001.jpg`, ...,
with `list_eval_partition.txt` beside it) and as a TFDS `celeb_a` prepared
offline by TFDS's own builder from those files. The recipes are shrunk by
overrides (smaller nets and batch, 2 steps, a tiny offline feature
extractor); the code that runs is the recipes' own, through `ek.zoo.build`.
Also: the InceptionV3 weights download against a local file with its hash,
and the declared cards' build commands and cost estimates.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

import ebgan_keras as ek
from ebgan_keras import cli
from ebgan_keras import zoo
from ebgan_keras.metrics import extractors
from ebgan_keras.zoo import card
from ebgan_keras.zoo import cost
from ebgan_keras.zoo import stages

CELEBA = ("ebgan_pt_celeba", "began_celeba")
#: CelebA's images: 178 wide, 218 high, RGB.
WIDTH, HEIGHT = 178, 218
NUM_IMAGES = 40
#: Official partition of the synthetic folder: 0 train, 1 validation, 2 test.
PARTITION = [0] * 28 + [1] * 4 + [2] * 8
#: Overrides that shrink the recipes' 64x64x3 networks and batch (the image
#: size, crop, losses and samplers stay the recipes' own).
SHRUNK_RECIPES = {
    "ebgan_pt_celeba": {
        "generator": {"kwargs": {"filters": 8}},
        "discriminator": {"kwargs": {"filters": [8, 16, 32]}},
        "training": {"batch_size": 8},
    },
    "began_celeba": {
        "generator": {"kwargs": {"filters": 8}},
        "discriminator": {"kwargs": {"filters": 8, "hidden_dim": 8}},
        "training": {"batch_size": 8},
    },
}
SHRUNK_SAMPLERS = {"ddls": {"num_steps": 2}}
#: A shrunk build compiles the nets' training step, generation, energies and
#: DDLS: 40-45 s on TensorFlow, about 70 s on JAX on this project's 2-core CPU
#: (shared, load ~7), so every build runs with --run-slow.
SLOW = pytest.mark.slow


def write_celeba_folder(root, count: int = NUM_IMAGES):
    """`root/img_align_celeba/000001.jpg...` and `root/list_eval_partition.txt`."""
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    columns = np.linspace(0.0, 1.0, WIDTH)[None, :, None]
    lines = []
    for index in range(count):
        colour = rng.uniform(0.2, 1.0, size=3)
        image = 255 * colour * (0.5 + 0.5 * rows * columns)
        image += rng.normal(0.0, 8.0, size=image.shape)
        pixels = np.clip(image, 0, 255).astype("uint8")
        name = f"{index + 1:06d}.jpg"
        Image.fromarray(pixels).save(folder / name, quality=90)
        lines.append(f"{name} {PARTITION[index]}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def celeba_folder(tmp_path_factory):
    return write_celeba_folder(tmp_path_factory.mktemp("celeba"))


def tiny_features() -> keras.Model:
    """An offline stand-in for InceptionV3: the mean colour of an image."""
    images = keras.Input((64, 64, 3))
    features = keras.layers.GlobalAveragePooling2D()(images)
    return keras.Model(images, features, name="mean_colour")


def build_shrunk(name: str, tmp_path, **data) -> dict:
    return zoo.build(
        name,
        out_dir=str(tmp_path / "entry"),
        run_dir=str(tmp_path / "run"),
        epochs=1,
        steps_per_epoch=2,
        num_samples=8,
        num_reference=8,
        sampler_settings=SHRUNK_SAMPLERS,
        features=tiny_features(),
        recipe_overrides=SHRUNK_RECIPES[name],
        verbose=0,
        **data,
    )


def check_built_entry(name: str, tmp_path, metadata: dict) -> None:
    entry = tmp_path / "entry"
    recipe = stages.read_config(name)
    assert metadata["weights"]["status"] == "shipped"
    assert metadata["training"]["steps"] == 2
    assert set(metadata["metrics"]) == set(recipe["evaluation"]["samplers"])
    for result in metadata["metrics"].values():
        assert np.isfinite(result["fid"]) and result["protocol"]["num_reference"] == 8
        assert result["protocol"]["features"] == "mean_colour"
    # The declared entry became a trained one: it loads, reproduces its
    # golden outputs, and its card is a trained entry's card.
    model = zoo.load(str(entry))
    assert tuple(model.image_shape) == (64, 64, 3)
    zoo.check_golden(model, entry)
    text = (entry / "README.md").read_text()
    assert text.startswith(f"# {name}") and "No weights are shipped" not in text
    assert "## Quality" in text and metadata["recipe_command"] in text


@SLOW
@pytest.mark.parametrize("name", CELEBA)
def test_recipe_runs_shrunk_on_an_image_folder(name, celeba_folder, tmp_path):
    # `data` alone: the reference follows it (the recipes score against
    # their training data set), and its test split is the official one.
    metadata = build_shrunk(name, tmp_path, data=str(celeba_folder))
    check_built_entry(name, tmp_path, metadata)
    assert metadata["training"]["data"] == str(celeba_folder)
    assert metadata["recipe_command"] == (
        f"ebgan-keras zoo build {name} --data {celeba_folder}"
    )
    protocol = metadata["metrics"]["prior"]["protocol"]
    assert protocol["reference"] == str(celeba_folder)
    assert protocol["reference_split"] == "test"


def test_folder_splits_follow_the_partition_file(celeba_folder, tmp_path):
    def count(folder, split):
        dataset = ek.data.load(
            str(folder), split=split, batch_size=4, drop_remainder=False
        )
        return sum(int(batch.shape[0]) for batch in dataset)

    assert [count(celeba_folder, s) for s in ("train", "validation", "test")] == [
        28,
        4,
        8,
    ]
    assert count(celeba_folder, "test[:3]+validation") == 7
    batch = next(
        iter(
            ek.data.load(
                str(celeba_folder), split="test", batch_size=8, crop=108, image_size=64
            )
        )
    )
    assert tuple(batch.shape) == (8, 64, 64, 3)
    assert -1.0 <= float(np.min(batch)) and float(np.max(batch)) <= 1.0
    # Without a partition file the folder is one split, "train", and asking
    # for "test" says how to get one.
    bare = tmp_path / "bare"
    bare.mkdir()
    for index in range(3):
        source = celeba_folder / f"{index + 1:06d}.jpg"
        (bare / source.name).write_bytes(source.read_bytes())
    assert count(bare, "train") == 3 and count(bare, "train[-1:]") == 1
    with pytest.raises(ValueError, match=r"list_eval_partition\.txt.*Eval/"):
        ek.data.load(str(bare), split="test")


# ----------------------------------------------------------------------
# TFDS celeb_a, prepared offline from the synthetic files
# ----------------------------------------------------------------------
def celeba_files_for_tfds(root, folder) -> dict:
    """The five files TFDS's `celeb_a` builder downloads, written locally.

    The zipped images and the partition, attribute, landmark and identity
    lists in CelebA's own formats, for the images of `folder`.
    """
    names = sorted(path.name for path in folder.glob("*.jpg"))
    zipped = root / "img_align_celeba.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for name in names:
            archive.write(folder / name, f"img_align_celeba/{name}")

    def table(path, headings, value):
        rows = "".join(f"{n} {' '.join([value] * len(headings))}\n" for n in names)
        path.write_text(f"{len(names)}\n{' '.join(headings)}\n{rows}")
        return path

    builder_module = tfds_builder_module()
    identities = root / "identity_CelebA.txt"
    identities.write_text("".join(f"{n} {i % 5}\n" for i, n in enumerate(names)))
    return {
        "img_align_celeba": zipped,
        "list_eval_partition": folder.parent / "list_eval_partition.txt",
        "list_attr_celeba": table(
            root / "list_attr_celeba.txt", builder_module.ATTR_HEADINGS, "-1"
        ),
        "landmarks_celeba": table(
            root / "list_landmarks_align_celeba.txt",
            builder_module.LANDMARK_HEADINGS,
            "10",
        ),
        "identity_celeba": identities,
    }


def tfds_builder_module():
    import importlib

    return importlib.import_module(
        "tensorflow_datasets.datasets.celeb_a.celeb_a_dataset_builder"
    )


@pytest.fixture(scope="module")
def tfds_celeba(tmp_path_factory, celeba_folder):
    """TFDS's own `celeb_a` builder, prepared offline from the synthetic files.

    Only its download is replaced (the files come from disk instead of Google
    Drive): the prepared data set (TFRecords and `dataset_info.json`) is a
    real one, read back by TFDS like any other.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    root = tmp_path_factory.mktemp("tfds_celeba")
    files = celeba_files_for_tfds(root, celeba_folder)
    data_dir = root / "tensorflow_datasets"

    def download(manager, urls):
        assert set(urls) == set(files), sorted(urls)
        return {key: str(files[key]) for key in urls}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tfds.download.DownloadManager, "download", download)
        tfds.builder("celeb_a", data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def test_tfds_celeb_a_prepared_offline_loads_with_data_dir(tfds_celeba):
    dataset = ek.data.load(
        "celeb_a",
        split="test",
        data_dir=str(tfds_celeba),
        batch_size=4,
        crop=108,
        image_size=64,
        drop_remainder=False,
    )
    images = np.concatenate([np.asarray(batch) for batch in dataset])
    assert images.shape == (8, 64, 64, 3)


@SLOW
@pytest.mark.parametrize("name", CELEBA)
def test_recipe_runs_shrunk_on_tfds_celeb_a(name, tfds_celeba, tmp_path):
    if keras.backend.backend() != "tensorflow" and name != "ebgan_pt_celeba":
        pytest.skip("the image-folder test runs every recipe on every backend")
    metadata = build_shrunk(name, tmp_path, data_dir=str(tfds_celeba))
    check_built_entry(name, tmp_path, metadata)
    assert metadata["training"]["data"] == "celeb_a"
    assert metadata["recipe_command"] == (
        f"ebgan-keras zoo build {name} --data-dir {tfds_celeba}"
    )
    assert metadata["metrics"]["prior"]["protocol"]["reference"] == "celeb_a"


# ----------------------------------------------------------------------
# Mixed precision: "auto" in the recipes, the entry computed in float32
# ----------------------------------------------------------------------
@pytest.mark.parametrize("name", CELEBA)
def test_recipes_ask_for_mixed_precision_on_a_gpu(name):
    assert stages.read_config(name)["training"]["mixed_precision"] == "auto"


def test_auto_mixed_precision_is_float32_without_a_gpu():
    from ebgan_keras import backend
    from ebgan_keras.run import training

    expected = "mixed_float16" if backend.gpu_available() else None
    assert training.resolve_mixed_precision("auto") == expected
    with pytest.raises(ek.run.config.ConfigError, match="mixed_precision"):
        training.resolve_mixed_precision("float16")
    with pytest.raises(ek.run.config.ConfigError, match="training.mixed_precision"):
        ek.run.config.validate(
            {
                "class": "EBGANPT",
                "generator": {"builder": "dcgan_generator"},
                "discriminator": {"builder": "ebgan_conv_discriminator"},
                "training": {"mixed_precision": "half"},
            }
        )


@SLOW
def test_entry_trained_in_mixed_precision_exports_float32(celeba_folder, tmp_path):
    # What a GPU run does under `"auto"` (mixed_float16), with bfloat16 that
    # every backend runs on a CPU: the golden outputs and metrics must be
    # those of the float32 model that `ek.zoo.load` builds.
    name = "ebgan_pt_celeba"
    overrides = {**SHRUNK_RECIPES[name], "training": {"batch_size": 8}}
    overrides["training"]["mixed_precision"] = "mixed_bfloat16"
    metadata = zoo.build(
        name,
        out_dir=str(tmp_path / "entry"),
        run_dir=str(tmp_path / "run"),
        epochs=1,
        steps_per_epoch=2,
        data=str(celeba_folder),
        num_samples=8,
        num_reference=8,
        sampler_names=["prior"],
        features=tiny_features(),
        recipe_overrides=overrides,
        verbose=0,
    )
    assert metadata["training"]["mixed_precision"] == "mixed_bfloat16"
    zoo.check_golden(zoo.load(str(tmp_path / "entry")), tmp_path / "entry")


# ----------------------------------------------------------------------
# InceptionV3 weights: get_file against a local file with its hash
# ----------------------------------------------------------------------
def stand_in_model() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])


def stand_in_weights(path) -> str:
    """A small legacy `.h5` (the format of InceptionV3's file); its md5."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls .h5 legacy: it is here
        stand_in_model().save(path)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def local_inception(tmp_path, monkeypatch):
    """InceptionV3's download pointed at a local file, the cache at tmp_path."""
    source = tmp_path / "mirror" / extractors.INCEPTION_FILE
    source.parent.mkdir()
    md5 = stand_in_weights(source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(extractors, "INCEPTION_URL", source.as_uri())
    monkeypatch.setattr(extractors, "INCEPTION_MD5", md5)
    cached = tmp_path / "keras_home" / "models" / extractors.INCEPTION_FILE
    return source, md5, cached


def test_inception_weights_with_a_good_hash_are_cached_and_load(local_inception):
    source, md5, cached = local_inception
    path = extractors._inception_weights_file("imagenet")
    assert path == str(cached) and cached.read_bytes() == source.read_bytes()
    stand_in_model().load_weights(path)  # as InceptionV3 loads its file
    # Served from the cache once there: the mirror may go away.
    source.unlink()
    assert extractors._inception_weights_file("imagenet") == str(cached)
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]


def test_tampered_inception_weights_are_refused_and_nothing_is_lost(
    local_inception,
):
    source, md5, cached = local_inception
    good = source.read_bytes()
    tampered = bytearray(good)
    tampered[-1] ^= 0xFF
    source.write_bytes(bytes(tampered))
    received = hashlib.md5(bytes(tampered)).hexdigest()
    with pytest.raises(extractors.WeightsIntegrityError) as caught:
        extractors._inception_weights_file("imagenet")
    message = str(caught.value)
    assert extractors.INCEPTION_FILE in message and source.as_uri() in message
    assert f"Expected md5 {md5}, received {received}" in message
    assert not cached.exists()  # nothing tampered enters the cache
    # A file already in the cache (here an older one, not matching) is left
    # exactly as it was by a download that fails its check.
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"an older download")
    with pytest.raises(extractors.WeightsIntegrityError, match="left as it was"):
        extractors._inception_weights_file("imagenet")
    assert cached.read_bytes() == b"an older download"
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]
    # The good file replaces it once it is served again.
    source.write_bytes(good)
    assert extractors._inception_weights_file("imagenet") == str(cached)
    assert hashlib.md5(cached.read_bytes()).hexdigest() == md5


# ----------------------------------------------------------------------
# The declared cards: build commands, estimates from FLOPs
# ----------------------------------------------------------------------
def test_layer_flops_match_hand_counts():
    images = keras.Input((8, 8, 3))
    down = keras.layers.Conv2D(5, 3, strides=2, padding="same")(images)
    up = ek.networks.layers.FastConv2DTranspose(2)(down)
    flat = keras.layers.Dense(7)(keras.layers.Flatten()(up))
    model = keras.Model(images, flat)
    conv, transposed, dense = (
        layer for layer in model.layers if cost.layer_flops(layer)
    )
    assert cost.layer_flops(conv) == 2 * (3 * 3 * 3 * 5) * (4 * 4)
    # Each of the 4x4 input pixels is spread over a 4x4 kernel.
    assert cost.layer_flops(transposed) == 2 * (4 * 4 * 2 * 5) * (4 * 4)
    assert cost.layer_flops(dense) == 2 * (8 * 8 * 2) * 7
    assert cost.network_flops(model) == sum(
        cost.layer_flops(layer) for layer in (conv, transposed, dense)
    )


@pytest.mark.parametrize("name", CELEBA)
def test_declared_card_says_how_to_build_and_what_it_costs(name, tmp_path):
    config = stages.read_config(name)
    (tmp_path / "config.json").write_text(json.dumps(config))
    metadata = card.write_declared_card(
        config,
        str(tmp_path),
        "no data here",
        train_images=162_770,
        data_folder="img_align_celeba",
    )
    text = (tmp_path / "README.md").read_text()
    command = f"ebgan-keras zoo build {name} --data /path/to/img_align_celeba"
    assert metadata["recipe_command"] == f"{command} --out my_zoo/{name}"
    assert command in text and "--data-dir /path/to/tensorflow_datasets" in text
    estimate = metadata["estimate"]
    batch = config["training"]["batch_size"]
    assert estimate["steps"] == config["training"]["epochs"] * (162_770 // batch)
    assert estimate["step_flops"] == batch * (
        4 * estimate["generator_flops"] + 8 * estimate["discriminator_flops"]
    )
    assert 1.0 < estimate["memory_gib"] < 16.0
    for words in ("estimated from FLOPs", "TFLOP/s", "GiB", "mixed_float16", "XLA"):
        assert words in text, words
    # The card's commands parse as the CLI's own.
    for line in text.split("```bash\n")[1].split("```")[0].splitlines():
        args = cli.build_parser().parse_args(line.split()[1:])
        assert args.command == "zoo" and args.action == "build" and args.name == name


@pytest.mark.parametrize("name", CELEBA)
def test_shipped_declared_cards_are_current(name, tmp_path):
    shipped = zoo.entry_dir(name)
    metadata = json.loads((shipped / "metadata.json").read_text())
    (tmp_path / "config.json").write_bytes((shipped / "config.json").read_bytes())
    card.write_declared_card(
        stages.read_config(name),
        str(tmp_path),
        metadata["weights"]["reason"],
        train_images=162_770,
        data_folder="img_align_celeba",
    )
    assert (tmp_path / "README.md").read_text() == (shipped / "README.md").read_text()
    assert "--data /path/to/img_align_celeba" in zoo.describe(name)["recipe_command"]

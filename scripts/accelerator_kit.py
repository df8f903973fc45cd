"""The accelerator kit: prepare here, then check and time the library on a GPU.

A GPU machine of this workplace (one H100 or H200; Python 3.12, JAX and
PyTorch with CUDA, numpy, scipy, h5py, ml-dtypes, pillow, matplotlib,
absl-py, rich; no TensorFlow, no Keras, no network) receives a copy of the
working tree (at most 64 MiB: tracked files, untracked files that are not
ignored, and the ignored paths named in `carry`), runs one command for at
most 10 minutes, and returns what the command wrote under `$OUT`.

Commands (run from the repository root):

    python scripts/accelerator_kit.py prepare [--data mnist[,fashion_mnist]]
        Here, with network: wheels for Python 3.12 manylinux x86_64 of what
        the GPU machine lacks (keras and its pure-Python needs), the offline
        data sets (compressed; rebuilt there into the sha256-checked cache)
        and the CPU reference numbers (parity steps, sampler outputs) into
        `.kit/` (ignored).
    python scripts/accelerator_kit.py bundle --apply | --restore
        Drops the zoo's entries but the kit's one from the working tree with
        `git sparse-checkout` (git keeps them: `--restore` brings them back).
    python scripts/accelerator_kit.py size [--carry .kit]
        The bytes that would travel; exit status 2 (and one line) above
        64 MiB, so an oversized tree is refused before a machine starts.
    python scripts/accelerator_kit.py run --out DIR [--shrink]
        On the GPU machine (or here on CPU with `--shrink`, CI-sized): parity
        of one training step of every model class against the CPU numbers,
        the samplers on a zoo entry, training and DDLS throughput against
        plain JAX and PyTorch loops with the measured matmul peak and MFU,
        the zoo entry's load, golden outputs and FID. Writes
        `DIR/accelerator_kit.json` and `DIR/accelerator_kit.log`.

The README's "Accelerator kit" section gives the device tool's call.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / ".kit"
LIMIT_BYTES = 64 * 1024**2
#: The zoo entry the kit keeps and checks (samplers, golden outputs, FID).
ENTRY = "ebgan_pt_mnist"
#: Distributions the GPU machine lacks (keras's needs beyond what it has,
#: and the package's own); one version each, no dependencies resolved there.
WHEELS = (
    "keras==3.15.1",
    "namex",
    "optree",
    "typing_extensions",  # optree's need (the GPU image has it; a bare one may not)
    "importlib_resources",
)
WHEEL_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
BACKENDS = ("jax", "torch")
#: The model classes whose one training step must agree across devices.
PARITY_CLASSES = (
    "EBGAN",
    "EBGANPT",
    "BEGAN",
    "MAGAN",
    "GAN",
    "WGANGP",
    "LossSensitiveGAN",
    "GLSGAN",
    "BiGAN",
)
PARITY_RTOL = 1e-4
#: Seconds the whole GPU run may take (the issue's 8 minutes), and the share
#: of the remaining time each backend's worker gets.
BUDGET_S = 480


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The sizes of one mode (`gpu` or `shrink`) of the run."""

    parity_hidden: int
    parity_batch: int
    parity_image: int
    sampler_num: int
    ddls_steps: int
    fid_num: int
    throughput_configs: tuple
    throughput_steps: tuple  # (warmup, timed)
    matmul_size: int
    ddls_batch: int
    bf16_classes: tuple


GPU = Sizes(
    128, 64, 28, 256, 50, 10000, ("A", "B", "C", "D"), (20, 200), 8192, 256,
    PARITY_CLASSES,
)  # fmt: skip
#: CI-sized, on a CPU: the same code paths, a fraction of the work.
SHRINK = Sizes(16, 8, 8, 8, 5, 200, ("A",), (2, 4), 256, 16, ("EBGANPT",))


#: The run's log file (`run` sets it); `log` writes there and to stdout.
LOG = {"file": None}


def log(message: str) -> None:
    _emit(f"[{time.strftime('%H:%M:%S')}] {message}\n")


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
    if LOG["file"] is not None:
        LOG["file"].write(text)
        LOG["file"].flush()


# ----------------------------------------------------------------------
# prepare / bundle / size (here)
# ----------------------------------------------------------------------
def prepare(args) -> int:
    os.environ.setdefault("KERAS_BACKEND", "jax")  # the arrays need no TensorFlow
    kit = Path(args.kit)
    kit.mkdir(exist_ok=True)
    if not args.skip_wheels:
        wheels = kit / "wheels"
        wheels.mkdir(exist_ok=True)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--only-binary=:all:", "--python-version", "3.12",
            "--implementation", "cp", "-d", str(wheels),
        ]  # fmt: skip
        for tag in WHEEL_PLATFORMS:
            command += ["--platform", tag]
        subprocess.run([*command, *WHEELS], check=True)
        log(f"wheels: {sorted(p.name for p in wheels.glob('*.whl'))}")
    if args.data:
        import numpy as np

        from ebgan_keras.data import offline

        (kit / "data").mkdir(exist_ok=True)
        for name in args.data.split(","):
            arrays = offline.load_arrays(name)  # sha256-checked (built if needed)
            target = kit / "data" / f"{name}.npz"
            np.savez_compressed(target, **arrays)
            log(f"data: {target} ({target.stat().st_size / 2**20:.1f} MiB)")
    if not args.skip_reference:
        for backend in BACKENDS:
            for mode in ("gpu", "shrink"):
                out = kit / "reference" / mode
                out.mkdir(parents=True, exist_ok=True)
                code = _spawn_worker(backend, out, mode, "reference", None, {})
                if code:
                    return code
    log(f"prepared {kit} ({_tree_bytes([kit]) / 2**20:.1f} MiB)")
    return 0


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def bundle(args) -> int:
    if args.restore:
        _git("sparse-checkout", "disable")
        log("sparse checkout off: the whole zoo is back in the working tree")
        return 0
    if args.apply:
        _git("sparse-checkout", "init", "--no-cone")
        _git(
            "sparse-checkout", "set", "--no-cone",
            "/*", "!/zoo/*/", f"/zoo/{args.entry}/",
        )  # fmt: skip
        log(f"sparse checkout: zoo/ keeps {args.entry} only (git still holds all)")
    return size(args)


def _tree_bytes(paths) -> int:
    total = 0
    for path in paths:
        path = Path(path)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and not file.is_symlink():
                    total += file.stat().st_size
    return total


def travelling_bytes(carry=()) -> tuple[int, int]:
    """Bytes of what the device tool sends, and the tracked files left out.

    Tracked files present in the working tree, untracked files that are not
    ignored, and the `carry` paths; a tracked file that sparse checkout took
    out of the working tree is counted apart (it does not travel: it is not
    there to copy).
    """
    listing = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    total, absent = 0, 0
    for name in filter(None, listing.split("\0")):
        path = ROOT / name
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
        elif not path.exists():
            absent += 1
    shared = ROOT / "shared"
    return total + _tree_bytes([ROOT / c for c in carry] + [shared]), absent


def size(args) -> int:
    carry = [c for c in (args.carry or "").split(",") if c]
    total, absent = travelling_bytes(carry)
    what = f"{total / 2**20:.1f} MiB would travel (tree + carry {carry or 'none'}"
    what += f"; {absent} tracked files outside the sparse checkout)"
    if total > LIMIT_BYTES:
        print(
            f"accelerator_kit: {what}, over the device's 64 MiB: run "
            "`python scripts/accelerator_kit.py bundle --apply` or carry less.",
            file=sys.stderr,
        )
        return 2
    log(what)
    return 0


# ----------------------------------------------------------------------
# run (parent): set up, one worker per backend, merge
# ----------------------------------------------------------------------
def _install_wheels(kit: Path) -> str | None:
    """Installs the kit's wheels into a private folder if Keras is missing."""
    import importlib.util

    wheels = sorted((kit / "wheels").glob("*.whl"))
    if importlib.util.find_spec("keras") is not None or not wheels:
        return None
    site = Path("/tmp/accelerator_kit_site")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
            "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site),
            *map(str, wheels),
        ],
        check=True,
    )  # fmt: skip
    return str(site)


def _install_data(kit: Path, keras_home: Path, env: dict) -> list[str]:
    """Rebuilds the offline caches from the kit (sha256-checked by `prepare`)."""
    names = [p.stem for p in sorted((kit / "data").glob("*.npz"))]
    if not names:
        return []
    code = (
        "import dataclasses, sys, numpy as np\n"
        "from ebgan_keras.data import offline\n"
        "for name, path in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    source = offline._SOURCES[name]\n"
        "    build = lambda workdir, path=path: dict(np.load(path))\n"
        "    offline.register_source(dataclasses.replace(source, build=build),"
        " overwrite=True)\n"
        "    print(offline.prepare(name))\n"
    )
    argv = []
    for name in names:
        argv += [name, str(kit / "data" / f"{name}.npz")]
    subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=dict(env, KERAS_HOME=str(keras_home), KERAS_BACKEND="jax"),
        check=True,
    )
    return names


def _spawn_worker(backend, out: Path, mode, role, deadline, env_extra) -> int:
    env = dict(os.environ, **env_extra)
    env["KERAS_BACKEND"] = backend
    env.setdefault("NVIDIA_TF32_OVERRIDE", "0")  # float32 parity: no TF32
    env.setdefault("JAX_THREEFRY_PARTITIONABLE", "false")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if mode == "shrink":
        # A shared CPU: OpenMP threads waiting on a descheduled sibling make
        # small torch ops 100x slower (benchmarks/train_throughput.py).
        env.setdefault("EK_BENCH_TORCH_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "benchmarks"), env.get("PYTHONPATH")) if p
    )
    command = [
        sys.executable, str(Path(__file__).resolve()), "_worker",
        "--backend", backend, "--out", str(out), "--mode", mode, "--role", role,
    ]  # fmt: skip
    timeout = None
    if deadline is not None:
        command += ["--deadline", str(deadline)]
        timeout = max(30.0, deadline - time.time() + 30)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    reader = threading.Thread(
        target=lambda: [_emit(line) for line in process.stdout], daemon=True
    )
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
        log(f"{backend} worker: killed at the budget")
        code = 124
    reader.join(timeout=10)
    return code


def run(args) -> int:
    start = time.time()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    kit = Path(args.kit).resolve()
    mode = "shrink" if args.shrink else "gpu"
    # Shrunk (CI, a shared CPU): every section runs; the GPU run keeps to 8 min.
    budget = args.budget_s or (3600 if args.shrink else BUDGET_S)
    env_extra = {}
    with open(out / "accelerator_kit.log", "w") as log_file:
        LOG["file"] = log_file
        log(f"accelerator kit: mode {mode}, budget {budget} s, kit {kit}")
        report = {"mode": mode, "shrink": bool(args.shrink), "budget_s": budget}
        report["errors"] = []
        try:
            site = _install_wheels(kit)
            if site:
                env_extra["PYTHONPATH"] = site
                log(f"installed the kit's wheels into {site}")
            keras_home = Path("/tmp/accelerator_kit_keras")
            if (kit / "data").is_dir():
                env_extra["KERAS_HOME"] = str(keras_home)
                base = dict(os.environ, **env_extra)
                base["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(ROOT), env_extra.get("PYTHONPATH")) if p
                )
                names = _install_data(kit, keras_home, base)
                log(f"offline data sets rebuilt from the kit: {names}")
        except Exception as error:  # noqa: BLE001 - recorded, the run goes on
            report["errors"].append(f"setup: {error!r}")
            log(f"setup failed: {error!r}")
        reference = kit / "reference" / mode
        env_extra["EK_KIT_REFERENCE"] = str(reference)
        for index, backend in enumerate(BACKENDS):
            left = budget - (time.time() - start)
            share = left / (len(BACKENDS) - index)
            deadline = time.time() + share
            part = out / f"part_{backend}.json"
            code = _spawn_worker(backend, out, mode, "device", deadline, env_extra)
            if code:
                report["errors"].append(f"{backend} worker exit status {code}")
            if part.exists():
                _merge(report, json.loads(part.read_text()))
                part.unlink()
        report["elapsed_s"] = round(time.time() - start, 1)
        _summarize(report)
        (out / "accelerator_kit.json").write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {out / 'accelerator_kit.json'} in {report['elapsed_s']} s")
        LOG["file"] = None
    failed = [r for r in report.get("parity", []) if not r.get("ok")]
    return 1 if failed or report["errors"] else 0


def _merge(report: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, list):
            report.setdefault(key, []).extend(value)
        elif isinstance(value, dict):
            report.setdefault(key, {}).update(value)
        else:
            report[key] = value


def _summarize(report: dict) -> None:
    parity = report.get("parity", [])
    report["summary"] = {
        "parity_ok": sum(bool(r.get("ok")) for r in parity),
        "parity_rows": len(parity),
        "max_float32_rel_diff": max(
            [r["rel_diff"] for r in parity if r.get("precision") == "float32"],
            default=None,
        ),
        "max_bfloat16_rel_diff": max(
            [r["rel_diff"] for r in parity if r.get("precision") != "float32"],
            default=None,
        ),
    }


# ----------------------------------------------------------------------
# worker (one backend per process)
# ----------------------------------------------------------------------
class Worker:
    """One backend's sections; each section checks the time left first."""

    def __init__(self, args) -> None:
        import keras

        self.backend = keras.backend.backend()
        self.mode = args.mode
        self.sizes = SHRINK if args.mode == "shrink" else GPU
        self.role = args.role
        self.deadline = args.deadline
        self.out = Path(args.out)
        reference = os.environ.get("EK_KIT_REFERENCE")
        self.reference = Path(reference) if reference else None
        self.result = {"parity": [], "samplers": [], "zoo": [], "throughput": []}
        self.result["errors"] = []
        self.float32 = {}  # this run's float32 parity records, by class
        _float32_exact(self.backend)
        threads = int(os.environ.get("EK_BENCH_TORCH_THREADS", "0"))
        if self.backend == "torch" and threads > 0:
            import torch

            torch.set_num_threads(threads)

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.time()

    def section(self, name, fn, need_s: float) -> None:
        if self.left() < need_s:
            log(f"{self.backend}: {name} skipped ({self.left():.0f} s left)")
            self.result["errors"].append(f"{self.backend} {name}: skipped, budget")
            return
        start = time.time()
        try:
            fn()
        except Exception as error:  # noqa: BLE001 - recorded, the run goes on
            log(f"{self.backend}: {name} failed:\n{traceback.format_exc()}")
            self.result["errors"].append(f"{self.backend} {name}: {error!r}")
        log(f"{self.backend}: {name} took {time.time() - start:.1f} s")

    # -- reference files ----------------------------------------------------
    def _reference(self, name: str):
        import numpy as np

        if self.reference is not None:
            path = self.reference / f"{self.backend}_{name}.npz"
            if path.exists():
                with np.load(path) as archive:
                    return {k: archive[k] for k in archive.files}, str(path)
        return None, None

    def _save_reference(self, name: str, record: dict) -> None:
        import numpy as np

        np.savez(self.out / f"{self.backend}_{name}.npz", **record)

    # -- parity ---------------------------------------------------------------
    def parity(self, mixed: bool = False) -> None:
        import keras
        import numpy as np

        for cls in self.sizes.bf16_classes if mixed else PARITY_CLASSES:
            if self.left() < (5 if self.mode == "shrink" else 20):
                self.result["errors"].append(f"{self.backend} parity {cls}: budget")
                break
            policy = keras.config.dtype_policy()
            if mixed:
                keras.config.set_dtype_policy("mixed_bfloat16")
            try:
                record = parity_step(cls, self.sizes)
            finally:
                keras.config.set_dtype_policy(policy)
            if self.role == "reference":
                self._save_reference(f"parity_{cls}", record)
                continue
            if not mixed:
                self.float32[cls] = record
            reference, source = self._reference(f"parity_{cls}")
            if reference is None and mixed and cls in self.float32:
                reference, source = self.float32[cls], "float32 on this device"
            if reference is None:  # no kit (CI's shrunk run): the plumbing only
                reference, source = record, "none in the kit: compared with itself"
            row = _compare(record, reference)
            row.update(
                model=cls,
                backend=self.backend,
                device=device_name(self.backend),
                precision="mixed_bfloat16" if mixed else "float32",
                reference=source,
            )
            if mixed:
                # bfloat16: the loss must be finite; its distance is reported.
                row["ok"] = bool(np.all(np.isfinite(record["losses"])))
                row["criterion"] = "losses finite (rel_diff stated)"
            else:
                row["ok"] = row["rel_diff"] <= PARITY_RTOL
                row["criterion"] = f"rel_diff <= {PARITY_RTOL}"
            log(
                f"{self.backend} parity {cls} {row['precision']}: rel diff "
                f"{row['rel_diff']:.2e} (losses {row['loss_rel_diff']:.2e}) "
                f"{'ok' if row['ok'] else 'FAILED'}"
            )
            self.result["parity"].append(row)

    # -- samplers ---------------------------------------------------------------
    def samplers(self) -> None:
        import numpy as np

        from ebgan_keras import zoo

        model = zoo.load(ENTRY)
        for name, sampler in entry_samplers(self.sizes).items():
            start = time.time()
            images, latents = sampler.sample(model, self.sizes.sampler_num, seed=0)
            seconds = time.time() - start
            # The first 32 images (the latents of all): the kit must stay small.
            record = {
                "images": np.asarray(images)[:32],
                "latents": np.asarray(latents),
            }
            if self.role == "reference":
                self._save_reference(f"sampler_{name}", record)
                continue
            reference, source = self._reference(f"sampler_{name}")
            if reference is None:
                reference, source = record, "this run (no CPU reference in the kit)"
            same = np.all(
                np.isclose(record["latents"], reference["latents"], atol=1e-3), axis=1
            )
            row = {
                "sampler": name,
                "entry": ENTRY,
                "backend": self.backend,
                "device": device_name(self.backend),
                "num_samples": self.sizes.sampler_num,
                "seconds": round(seconds, 3),
                "same_latents_fraction": float(np.mean(same)),
                "max_abs_latent_diff": float(
                    np.max(np.abs(record["latents"] - reference["latents"]))
                ),
                "max_abs_image_diff_where_same": float(
                    np.max(np.abs(record["images"] - reference["images"])[same[:32]])
                    if same[:32].any()
                    else np.nan
                ),
                "reference": source,
            }
            log(f"{self.backend} sampler {name}: {json.dumps(row)}")
            self.result["samplers"].append(row)

    # -- zoo ------------------------------------------------------------------
    def zoo(self, with_fid: bool) -> None:
        import ebgan_keras as ek
        from ebgan_keras import zoo

        start = time.time()
        model = zoo.load(ENTRY)
        load_s = time.time() - start
        errors = zoo.check_golden(model, ENTRY)
        row = {
            "entry": ENTRY,
            "backend": self.backend,
            "device": device_name(self.backend),
            "load_s": round(load_s, 2),
            **errors,
        }
        if with_fid:
            from ebgan_keras import data as ek_data

            if self.mode == "shrink":
                name, split = "mnist_subset", "x_test"
            else:
                name, split = "mnist", "x_test"
            reference = ek_data.load_arrays(name)[split][..., None]
            reference = reference.astype("float32") / 127.5 - 1.0
            start = time.time()
            result = ek.metrics.fid(
                model,
                reference=reference,
                num_samples=self.sizes.fid_num,
                seed=0,
                reference_name=name,
                reference_split="test",
            )
            row["fid"] = float(result.value)
            row["fid_num_samples"] = self.sizes.fid_num
            row["fid_reference"] = f"{name} test ({len(reference)} images)"
            row["fid_s"] = round(time.time() - start, 1)
            card = zoo.describe(ENTRY)["metrics"]["prior"]["fid"]
            row["card_fid_prior"] = card
        log(f"{self.backend} zoo: {json.dumps(row)}")
        self.result["zoo"].append(row)

    # -- throughput ------------------------------------------------------------
    def throughput(self) -> None:
        import train_throughput as tt

        peak = matmul_peak(self.backend, self.sizes.matmul_size)
        self.result["peak"] = {self.backend: peak}
        log(f"{self.backend} matmul peak: {json.dumps(peak)}")
        warmup, steps = self.sizes.throughput_steps
        quick = self.mode == "shrink"
        for config in self.sizes.throughput_configs:
            if self.left() < 25:
                self.result["errors"].append(
                    f"{self.backend} throughput {config}: budget"
                )
                break
            run_config = tt.CONFIGS[config]
            if quick:
                run_config = tt._common.with_overrides(
                    run_config, {"training": {"batch_size": 8}}
                )
            tt.STEPS[config] = ((warmup, steps), (warmup, steps))
            variants = [
                {"jit_compile": self.backend == "jax", "steps_per_execution": 1}
            ]
            if self.backend == "jax" and not quick:
                variants.append({"jit_compile": True, "steps_per_execution": 10})
            rows = tt.keras_worker(run_config, config, quick, 1, variants)
            try:
                rows.append(plain_loop(self.backend, run_config, warmup, steps))
            except Exception as error:  # noqa: BLE001 - e.g. D has no plain loop
                log(f"{self.backend} plain loop {config}: {error!r}")
            flops = next(
                (r["flops_per_step"] for r in rows if "flops_per_step" in r), None
            )
            for row in rows:
                rate = row["steps_per_s"]["median"]
                row.update(config=config, device=device_name(self.backend))
                row["images_per_s"] = round(rate * run_config["training"]["batch_size"])
                if flops:
                    row["flops_per_step"] = flops
                    achieved = rate * flops / 1e9
                    row["achieved_gflops"] = round(achieved, 1)
                    row["mfu_fp32"] = round(achieved / peak["float32_gflops"], 4)
                log(f"{self.backend} throughput {config}: {json.dumps(row)}")
                self.result["throughput"].append(row)
        self.section("ddls throughput", self.ddls_throughput, 15)

    def ddls_throughput(self) -> None:
        import train_throughput as tt

        import ebgan_keras as ek

        model = tt.seeded_model(tt.CONFIGS["A"])
        steps = self.sizes.ddls_steps * 2
        sampler = ek.samplers.DDLS(
            step_size=0.01, num_steps=steps, temperature=1.0, seed=0,
            batch_size=self.sizes.ddls_batch,
        )  # fmt: skip
        sampler.sample(model, self.sizes.ddls_batch, seed=0)  # compile
        start = time.time()
        sampler.sample(model, self.sizes.ddls_batch, seed=1)
        seconds = time.time() - start
        row = {
            "config": "DDLS on A",
            "implementation": "ek.samplers.DDLS",
            "backend": self.backend,
            "device": device_name(self.backend),
            "batch_size": self.sizes.ddls_batch,
            "num_steps": steps,
            "langevin_steps_per_s": round(steps / seconds, 1),
        }
        log(f"{self.backend} ddls: {json.dumps(row)}")
        self.result["throughput"].append(row)

    def main(self) -> None:
        sizes_need = 5 if self.mode == "shrink" else 30
        self.section("parity float32", self.parity, sizes_need)
        if self.role == "device":
            self.section("parity bfloat16", lambda: self.parity(mixed=True), sizes_need)
        self.section("samplers", self.samplers, sizes_need)
        if self.role == "device":
            self.section("zoo", lambda: self.zoo(self.backend == "jax"), sizes_need)
            self.section("throughput", self.throughput, sizes_need)
            self.result["environment"] = {self.backend: environment(self.backend)}
            (self.out / f"part_{self.backend}.json").write_text(
                json.dumps(self.result, indent=2, default=float)
            )


def _float32_exact(backend: str) -> None:
    """TF32 off: float32 matmuls and convolutions in full float32."""
    if backend == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")


def device_name(backend: str) -> str:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        return f"cpu ({platform.processor() or platform.machine()})"
    import jax

    device = jax.devices()[0]
    return getattr(device, "device_kind", str(device))


def environment(backend: str) -> dict:
    import keras
    import numpy as np

    info = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "device": device_name(backend),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    module = __import__(backend)
    info[backend] = module.__version__
    return info


def parity_models(sizes: Sizes) -> dict:
    """Builders of one small model of every class (the same on all devices)."""
    import ebgan_keras as ek
    from ebgan_keras import networks as n

    side, hidden, z = sizes.parity_image, sizes.parity_hidden, 8
    shape = (side, side, 1)

    def gen():
        return n.ebgan_mlp_generator(
            latent_dim=z, image_shape=shape, hidden_units=(hidden, hidden)
        )

    def auto():
        return n.ebgan_mlp_discriminator(
            image_shape=shape, encoder_units=(hidden, hidden // 2)
        )

    def critic():
        return n.gan_mlp_discriminator(image_shape=shape, hidden_units=(hidden, hidden))

    began_side = 8 if side < 16 else 16
    return {
        "EBGAN": lambda: _fixed(ek.EBGAN)(gen(), auto(), margin=3.0),
        "EBGANPT": lambda: _fixed(ek.EBGANPT)(gen(), auto(), margin=3.0),
        "BEGAN": lambda: _fixed(ek.BEGAN)(
            n.began_generator(
                latent_dim=z, image_size=began_side, channels=1, filters=8
            ),
            n.began_discriminator(
                image_size=began_side, channels=1, filters=8, hidden_dim=z
            ),
            initial_k=0.3,
            lambda_k=0.1,
        ),
        "MAGAN": lambda: _fixed(ek.MAGAN)(
            gen(), auto(), margin=40.0, pretrain_epochs=0
        ),
        "GAN": lambda: _fixed(ek.GAN)(gen(), critic()),
        "WGANGP": lambda: _fixed(ek.WGANGP)(gen(), critic(), critic_steps=2),
        "LossSensitiveGAN": lambda: _fixed(ek.LossSensitiveGAN)(gen(), critic()),
        "GLSGAN": lambda: _fixed(ek.GLSGAN)(gen(), critic()),
        "BiGAN": lambda: _fixed(ek.BiGAN)(
            gen(),
            n.bigan_mlp_discriminator(shape, z, (hidden,), (hidden // 2,), (hidden,)),
            n.bigan_mlp_encoder(shape, z, hidden_units=(hidden,)),
        ),
    }


def _fixed(base):
    """`base` with its training latents and penalty weights fixed constants."""
    from keras import ops

    class Fixed(base):
        fixed_latents = None
        fixed_mix = None

        def sample_latents(self, num_samples, seed=None):
            if seed is not None or self.fixed_latents is None:
                return super().sample_latents(num_samples, seed=seed)
            return ops.convert_to_tensor(self.fixed_latents)

        def interpolation_weights(self, batch_size):
            if self.fixed_mix is None:
                return super().interpolation_weights(batch_size)
            return ops.convert_to_tensor(self.fixed_mix)

    Fixed.__name__ = f"Fixed{base.__name__}"
    return Fixed


def parity_step(cls: str, sizes: Sizes) -> dict:
    """One SGD training step of a deterministic model: losses and variables."""
    import keras
    import numpy as np

    import ebgan_keras as ek

    keras.utils.set_random_seed(0)
    model = parity_models(sizes)[cls]()
    rng = np.random.default_rng(123)
    for variable in model.trainable_variables:
        fan_in = int(np.prod(variable.shape[:-1])) if len(variable.shape) > 1 else 1
        scale = 1.0 / np.sqrt(max(fan_in, 1))
        variable.assign(rng.normal(scale=scale, size=variable.shape).astype("float32"))
    batch = sizes.parity_batch
    model.fixed_latents = rng.normal(size=(batch, model.latent_dim)).astype("float32")
    model.fixed_mix = rng.uniform(size=(batch,)).astype("float32")
    images = rng.uniform(-1, 1, (batch, *model.image_shape)).astype("float32")
    optimizers = {
        "d_optimizer": keras.optimizers.SGD(0.01),
        "g_optimizer": keras.optimizers.SGD(0.01),
    }
    if isinstance(model, ek.BiGAN):
        optimizers["e_optimizer"] = keras.optimizers.SGD(0.01)
    model.compile(**optimizers)
    history = model.fit(images, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    names = sorted(k for k in history.history if k.endswith("loss"))
    record = {
        "loss_names": np.array(names),
        "losses": np.array([history.history[k][-1] for k in names], np.float64),
    }
    sample = np.random.default_rng(7)
    for i, variable in enumerate(model.trainable_variables):
        values = np.asarray(keras.ops.convert_to_numpy(variable), np.float64).ravel()
        take = sample.choice(values.size, size=min(256, values.size), replace=False)
        record[f"var_{i}"] = values[np.sort(take)]
    return record


def _compare(record: dict, reference: dict) -> dict:
    import numpy as np

    losses, expected = record["losses"], reference["losses"]
    loss_rel = np.abs(losses - expected) / np.maximum(np.abs(expected), 1e-6)
    var_rel = [0.0]
    for key in reference:
        if key.startswith("var_") and key in record:
            diff = np.max(np.abs(record[key] - reference[key]))
            var_rel.append(diff / max(float(np.max(np.abs(reference[key]))), 1e-6))
    rel = max(float(np.max(loss_rel)), max(var_rel))
    return {
        "losses": {str(k): float(v) for k, v in zip(record["loss_names"], losses)},
        "loss_rel_diff": float(np.max(loss_rel)),
        "weights_rel_diff": float(max(var_rel)),
        "rel_diff": rel,
    }


def entry_samplers(sizes: Sizes) -> dict:
    """DDLS, rejection and MH with the entry card's settings (DDLS shortened)."""
    from ebgan_keras import samplers
    from ebgan_keras import zoo

    metrics = zoo.describe(ENTRY)["metrics"]

    def settings(name):
        out = dict(metrics[name]["sampler"])
        out.pop("name", None)
        out["seed"] = 0
        return out

    ddls = settings("ddls")
    ddls["num_steps"] = sizes.ddls_steps
    mh = settings("metropolis_hastings")
    if sizes is SHRINK:
        mh["chain_length"] = 5
    return {
        "ddls": samplers.DDLS(**ddls),
        "rejection": samplers.RejectionSampler(**settings("rejection")),
        "metropolis_hastings": samplers.MetropolisHastings(**mh),
    }


def matmul_peak(backend: str, size: int) -> dict:
    """Measured matmul GFLOP/s in float32 (TF32 off) and bfloat16."""
    flops = 2 * size**3
    result = {"size": size}
    for dtype in ("float32", "bfloat16"):
        if backend == "torch":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
            a = torch.randn(size, size, device=device).to(getattr(torch, dtype))
            b = torch.randn(size, size, device=device).to(getattr(torch, dtype))

            def sync(x, device=device):
                if device == "cuda":
                    torch.cuda.synchronize()
                return x

            def run(a=a, b=b):
                return a @ b

        else:
            import jax
            import jax.numpy as jnp

            key = jax.random.PRNGKey(0)
            a = jax.random.normal(key, (size, size)).astype(dtype)
            b = jax.random.normal(key, (size, size)).astype(dtype)
            dot = jax.jit(jnp.dot)  # arguments, not constants: no folding

            def run(a=a, b=b, dot=dot):
                return dot(a, b)

            def sync(x):
                return jax.block_until_ready(x)

        for _ in range(3):
            sync(run())
        repeats = 10
        start = time.perf_counter()
        for _ in range(repeats):
            out = run()
        sync(out)
        seconds = (time.perf_counter() - start) / repeats
        result[f"{dtype}_gflops"] = round(flops / seconds / 1e9, 1)
    return result


def plain_loop(backend: str, run_config: dict, warmup: int, steps: int) -> dict:
    """The hand-written JAX or PyTorch loop of a config, on this device."""
    import _common

    spec = _common.reference_spec(run_config)
    if backend == "jax":
        import reference_jax

        rates = reference_jax.measure(spec, steps, warmup, 1)
        name = "plain JAX jit loop"
    else:
        import reference_torch
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        with torch.device(device):
            step = reference_torch.make_step(spec)
            real = torch.rand(
                spec["batch_size"], *reference_torch._nchw(spec["image_shape"])
            )
            real = real * 2 - 1
            for _ in range(warmup):
                step(real)
            float(step(real)[1])
            start = time.perf_counter()
            for _ in range(steps):
                losses = step(real)
            float(losses[1])
            rates = [steps / (time.perf_counter() - start)]
        name = "plain PyTorch loop"
    return {
        "implementation": name,
        "backend": backend,
        "steps_per_s": {"median": rates[0], "min": min(rates), "max": max(rates)},
        "warmup_steps": warmup,
        "timed_steps": steps,
    }


def worker(args) -> int:
    Worker(args).main()
    return 0


# ----------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default=str(KIT), help="the kit folder (.kit)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="wheels, data and CPU references")
    # MNIST (11 MiB compressed) by default; Fashion-MNIST (29 MiB more, for
    # its zoo recipes) fits only beside a sparse tree of at most ~19 MiB.
    p.add_argument("--data", default="mnist", help="e.g. mnist,fashion_mnist")
    p.add_argument("--skip-wheels", action="store_true")
    p.add_argument("--skip-reference", action="store_true")
    p = commands.add_parser("bundle", help="sparse checkout of the zoo")
    p.add_argument("--apply", action="store_true")
    p.add_argument("--restore", action="store_true")
    p.add_argument("--entry", default=ENTRY)
    p.add_argument("--carry", default=".kit")
    p = commands.add_parser("size", help="bytes that would travel")
    p.add_argument("--carry", default=".kit")
    p = commands.add_parser("run", help="the checks and timings")
    p.add_argument("--out", required=True)
    p.add_argument("--shrink", action="store_true", help="CI-sized, on CPU")
    p.add_argument("--budget-s", type=float, default=None)
    p = commands.add_parser("_worker")
    p.add_argument("--backend", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", default="gpu")
    p.add_argument("--role", default="device")
    p.add_argument("--deadline", type=float, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    handlers = {
        "prepare": prepare,
        "bundle": bundle,
        "size": size,
        "run": run,
        "_worker": worker,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

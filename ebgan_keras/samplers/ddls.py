"""DDLS: Langevin dynamics in latent space on the discriminator's energy."""

from __future__ import annotations

import math
import weakref

import numpy as np
from keras import ops

from ebgan_keras import backend
from ebgan_keras import memory
from ebgan_keras.samplers.calibration import EnergyCalibration
from ebgan_keras.samplers.calibration import as_calibration
from ebgan_keras.samplers.calibration import calibrate_model
from ebgan_keras.samplers.sampler import Sampler
from ebgan_keras.samplers.sampler import _check_float
from ebgan_keras.samplers.sampler import _check_positive_int
from ebgan_keras.samplers.sampler import check_model
from ebgan_keras.samplers.sampler import generate
from ebgan_keras.samplers.sampler import register_sampler
from ebgan_keras.utils import prior_latents

# Keeps arctanh finite when a uniform latent sits on the box's edge.
_UNIFORM_EDGE = 1e-6

# Compiled chains, per model (weakly held) and per chain setting.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@register_sampler("ddls")
class DDLS(Sampler):
    """Discriminator-driven latent sampling (Che et al., 2020): Langevin in z.

    The chain runs on the latent energy

    `U(z) = -log p0(z) + E(G(z)) / T`,

    where `E` is the autoencoder discriminator's energy (low = looks real),
    `p0` the model's latent prior and `T` the temperature (energies are not
    logits, so `T` sets how strongly the energy pulls against the prior).

    Calibrated temperature: an energy's scale differs by orders of magnitude
    between models, so `T = 1` means something else on each.
    `DDLS.calibrate(model, real_images)` fits the same logistic calibration
    as rejection sampling and MH-GAN (`EnergyCalibration`:
    `d(x) = slope * (-E(x)) + intercept ~ log p_data(x) / p_G(x)` on held-out
    real against generated images) and sets `T = 1 / slope`, so that
    `U(z) = -log p0(z) - d(G(z)) + const`: Che et al.'s latent energy with
    the calibrated logit `d` (exactly the data distribution pulled back to
    latent space when `d` is the log density ratio). The fit is kept in
    `sampler.calibration`; a model whose energy is `c` times another's gets
    a temperature `c` times larger and the same chains.

    Each step is

    `z <- z - (eps / 2) * grad U(z) + sqrt(eps) * noise_scale * n`, `n ~ N(0, I)`,

    started from the prior. With `metropolis=True` each step is a proposal
    that a Metropolis-Hastings test accepts or rejects (MALA), so the chain
    targets `exp(-U)` exactly whatever the step size (`noise_scale` then only
    widens the proposal). Without it, `noise_scale=1` targets `exp(-U)` up to
    the discretisation error, `noise_scale=0` is gradient descent on `U`.

    Uniform prior on `[-1, 1]`: the chain runs in an unconstrained space,
    `z = tanh(u)`, on `U(u) = -log p0(tanh u) - log|dz/du| + E(G(tanh u)) / T`
    with `-log|dz/du| = sum 2 log cosh(u)`; so latents never leave the box
    and the chain targets the same distribution over `z`.

    The loop is written once with `keras.ops.fori_loop` and compiled per
    backend (`jax.jit` with the model's weights passed in as state,
    `tf.function(jit_compile=True)`; on PyTorch it runs eagerly without
    autograd except for the gradient w.r.t. z). Compiled chains are cached per
    model and setting.

    After `sample`, `energy_trace` holds `U` along the chain
    (`(num_steps + 1, num_samples)`, with `record_energy=True`),
    `latent_path` the latents every `record_every` steps
    (`(num_frames, num_samples, latent_dim)`, with `record_every`; the
    step of each frame in `path_steps`) and `acceptance_rate` the fraction of
    accepted steps (1 without Metropolis). Recording changes nothing in the
    chain: the same seed gives the same samples with or without it.

    Args:
        step_size: float. The step size `eps`, `> 0`. Defaults to `1e-2`.
        num_steps: int. Langevin steps per sample. Defaults to `100`.
        temperature: float. `T`, divides the energy, `> 0`. Defaults to
            `None`: `1 / calibration.slope` with a `calibration`, else `1.0`.
        noise_scale: float. Scales the injected noise, `>= 0`. Defaults to
            `1.0`.
        seed: int. Seed of the initial latents and the chain's noise.
            Defaults to `None`.
        metropolis: bool. Add the Metropolis correction (MALA). Defaults to
            `False`.
        record_energy: bool. Record `U` along the chain in `energy_trace`.
            Defaults to `False`.
        jit_compile: bool. Compile the loop (`False` runs the same step in a
            Python loop, for debugging). Defaults to `True`.
        batch_size: int. Chains run together. Defaults to `256`.
        record_every: int. Record the latents at steps `0, k, 2k, ...` and
            the last step in `latent_path` (`ebgan_keras.plot.animation`
            turns them into a GIF). Defaults to `None` (no recording).
        calibration: `EnergyCalibration` or its config dict. The energy's
            logistic calibration that sets the temperature (see
            `DDLS.calibrate`). Defaults to `None`.
        temperature_scale: float. Multiplies the temperature, `> 0`: the
            chain runs on `U(z) = -log p0(z) + E(G(z)) / (T * s)`. With a
            calibrated `T`, `s < 1` sharpens the calibrated target
            `p0(z) r(G(z))` to `p0(z) r(G(z))^(1/s)` (`r` the calibrated
            density ratio); the zoo's sweep chooses `s` on held-out images.
            Defaults to `1.0`.

    Example:

    ```python
    import ebgan_keras.samplers as samplers

    sampler = samplers.DDLS(step_size=1e-2, num_steps=100, seed=0)
    images, z = sampler.sample(model, num_samples=64)
    z_next = sampler.step(model, z)  # one step, to write your own loop

    # The temperature from the energy's calibration on held-out real images:
    calibrated = samplers.DDLS.calibrate(model, held_out_images, seed=0)
    calibrated.temperature  # 1 / calibrated.calibration.slope
    ```

    Reference:
        - [Che et al., 2020](https://arxiv.org/abs/2003.06060)
    """

    def __init__(
        self,
        step_size: float = 1e-2,
        num_steps: int = 100,
        temperature: float | None = None,
        noise_scale: float = 1.0,
        seed: int | None = None,
        metropolis: bool = False,
        record_energy: bool = False,
        jit_compile: bool = True,
        batch_size: int = 256,
        record_every: int | None = None,
        calibration: EnergyCalibration | dict | None = None,
        temperature_scale: float = 1.0,
    ):
        super().__init__(seed=seed, batch_size=batch_size)
        # === Config ===
        self.step_size = _check_float(step_size, "step_size")
        self.num_steps = _check_positive_int(num_steps, "num_steps")
        self.calibration = as_calibration(calibration)
        self.temperature = _temperature(temperature, self.calibration)
        self.temperature_scale = _check_float(temperature_scale, "temperature_scale")
        self.noise_scale = _check_float(noise_scale, "noise_scale", strict=False)
        self.metropolis = bool(metropolis)
        self.record_energy = bool(record_energy)
        self.jit_compile = bool(jit_compile)
        self.record_every = (
            None
            if record_every is None
            else _check_positive_int(record_every, "record_every")
        )
        if self.metropolis and self.noise_scale == 0:
            raise ValueError(
                "The Metropolis correction needs noise in the proposal. "
                f"Received: metropolis=True, noise_scale={noise_scale!r}"
            )
        self.energy_trace = None
        self.latent_path = None
        self.path_steps = None
        self.acceptance_rate = None

    @classmethod
    def calibrate(
        cls,
        model,
        real_images,
        num_generated: int | None = None,
        seed: int | None = None,
        batch_size: int = 256,
        **kwargs,
    ) -> DDLS:
        """A DDLS whose temperature comes from the energy's calibration.

        Fits `EnergyCalibration` (the logistic regression of `-E` on held-out
        real images against as many generated ones, as for rejection
        sampling and MH-GAN) and returns a sampler with
        `temperature = 1 / slope`, so the chain runs on
        `U(z) = -log p0(z) - d(G(z)) + const` with `d` the calibrated logit.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            real_images: array `(N, H, W, C)`. Held-out real images (not used
                in training, or the fit is optimistic).
            num_generated: int. Generated images in the logistic fit.
                Defaults to `len(real_images)`.
            seed: int. Seed of the calibration (its generated images) and of
                the sampler. Defaults to `None`.
            batch_size: int. Images per forward pass and chains run
                together. Defaults to `256`.
            **kwargs: other constructor arguments (`step_size`, `num_steps`,
                `noise_scale`, `metropolis`, ...), not `temperature`.

        Returns:
            A `DDLS` with `calibration` and the calibrated `temperature`.

        Raises:
            ValueError: if the energy does not rank real images below
                generated ones (a fitted slope `<= 0`: no temperature makes
                such an energy a logit).
        """
        for name in ("temperature", "calibration"):
            if name in kwargs:
                raise ValueError(
                    f"`DDLS.calibrate` sets `{name}` from the fit. Received: "
                    f"{name}={kwargs[name]!r}"
                )
        sampler = cls(seed=seed, batch_size=batch_size, **kwargs)
        calibration = calibrate_model(
            model, real_images, num_generated, batch_size, sampler._call_seed(None)
        )
        sampler.temperature = _temperature(None, calibration)
        sampler.calibration = calibration
        return sampler

    @classmethod
    def from_calibration(cls, calibration, seed: int | None = None, **kwargs) -> DDLS:
        """The sampler `calibrate` returns, from a calibration fitted before.

        For a calibration stored with a model (a zoo card records it): the
        temperature is `1 / calibration.slope`, and the seed stream advances
        past the one draw `calibrate` makes for its fit, so that the sampler
        draws the same chains as the one that was fitted with this seed.

        Args:
            calibration: `EnergyCalibration` or its config dict.
            seed: int. The seed `calibrate` was given. Defaults to `None`.
            **kwargs: other constructor arguments, not `temperature`.

        Returns:
            A `DDLS` with `calibration` and the calibrated `temperature`.

        Example:

        >>> sampler = DDLS.from_calibration({"slope": 0.5, "intercept": 0.0}, seed=0)
        >>> sampler.temperature
        2.0
        """
        if "temperature" in kwargs:
            raise ValueError(
                "`DDLS.from_calibration` sets `temperature` from the calibration. "
                f"Received: temperature={kwargs['temperature']!r}"
            )
        sampler = cls(seed=seed, calibration=calibration, **kwargs)
        sampler._call_seed(None)  # the draw of `calibrate`'s fit
        return sampler

    @property
    def chain_temperature(self) -> float:
        """The temperature the chain runs at: `temperature * temperature_scale`."""
        return self.temperature * self.temperature_scale

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "step_size": self.step_size,
            "num_steps": self.num_steps,
            "temperature": self.temperature,
            "temperature_scale": self.temperature_scale,
            "noise_scale": self.noise_scale,
            "metropolis": self.metropolis,
            "record_energy": self.record_energy,
            "jit_compile": self.jit_compile,
            "record_every": self.record_every,
            "calibration": None
            if self.calibration is None
            else self.calibration.get_config(),
        }

    # ------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------
    def sample(self, model, num_samples: int, seed: int | None = None):
        """Runs `num_steps` Langevin steps from the prior; returns `(images, z)`.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            num_samples: int. How many samples (chains).
            seed: int. Seed of this call only. Defaults to `None` (the next
                seed of the sampler's stream).

        Returns:
            `(images, z)` as numpy arrays; `z` is the chains' last state.
        """
        check_model(model)
        num_samples = _check_positive_int(num_samples, "num_samples")
        rng = np.random.default_rng(self._call_seed(seed))
        z = prior_latents(model.latent_distribution, num_samples, model.latent_dim, rng)
        z, traces, paths, accepted = self._run(model, z, self.num_steps, rng)
        self.energy_trace = np.concatenate(traces, axis=1) if traces else None
        self.latent_path = np.concatenate(paths, axis=1) if paths else None
        self.path_steps = (
            path_steps(self.num_steps, self.record_every) if paths else None
        )
        self.acceptance_rate = accepted / (num_samples * self.num_steps)
        return generate(model, z, self.batch_size), z

    def step(self, model, z, seed: int | None = None) -> np.ndarray:
        """One DDLS step from the latents `z`; returns the new latents.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            z: array `(N, latent_dim)`. Current latents (inside `[-1, 1]` for a
                uniform prior).
            seed: int. Seed of this step's noise. Defaults to `None` (the next
                seed of the sampler's stream).

        Returns:
            float32 numpy `(N, latent_dim)`.
        """
        check_model(model)
        z = np.asarray(ops.convert_to_numpy(z), dtype="float32")
        if z.ndim != 2 or z.shape[1] != int(model.latent_dim):
            raise ValueError(
                f"`z` must have shape (N, {model.latent_dim}). Received: z with "
                f"shape {z.shape}"
            )
        rng = np.random.default_rng(self._call_seed(seed))
        z, _, _, _ = self._run(model, z, 1, rng)
        return z

    def latent_energy(self, model, z) -> np.ndarray:
        """The latent energy `U(z)` of each latent (up to a constant).

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            z: array `(N, latent_dim)`.

        Returns:
            float64 numpy `(N,)`. For a uniform prior, `U` of the
            unconstrained `u = arctanh(z)` (which includes the log-Jacobian).
        """
        check_model(model)
        w = to_chain_space(model, np.asarray(z, dtype="float32"))
        energy_fn = latent_energy_fn(model, self.chain_temperature)
        return ops.convert_to_numpy(energy_fn(ops.convert_to_tensor(w))).astype(
            "float64"
        )

    # ------------------------------------------------------------------
    # The chain
    # ------------------------------------------------------------------
    def _run(self, model, z: np.ndarray, num_steps: int, rng: np.random.Generator):
        # The noise of one batch of chains is drawn up front (float64, then
        # float32): refused at once, with the estimate, when it cannot fit.
        chains = min(self.batch_size, len(z))
        per_step = chains * (z.shape[1] + (1 if self.metropolis else 0)) * 12
        per_step += chains * 4 * bool(self.record_energy)
        memory.check_fits(
            float(num_steps) * per_step,
            f"DDLS with num_steps={num_steps} (the noise of {chains} chains is "
            "drawn before they run: lower `num_steps` or `batch_size`)",
        )
        chain = self._compiled_chain(model, num_steps)
        outputs, traces, paths, accepted = [], [], [], 0.0
        for start in range(0, len(z), self.batch_size):
            w = to_chain_space(model, z[start : start + self.batch_size])
            # Noise from numpy, so compiled and eager chains (and backends)
            # see the same numbers; only a batch of chains is held at once.
            noise = rng.standard_normal((num_steps, *w.shape)).astype("float32")
            if self.metropolis:
                uniforms = rng.uniform(size=(num_steps, len(w))).astype("float32")
            else:
                uniforms = np.zeros((1, 1), "float32")
            w, accepted_steps, trace, path = chain(
                ops.convert_to_tensor(w),
                ops.convert_to_tensor(noise),
                ops.convert_to_tensor(uniforms),
            )
            outputs.append(from_chain_space(model, ops.convert_to_numpy(w)))
            accepted += float(ops.convert_to_numpy(ops.sum(accepted_steps)))
            if self.record_energy:
                traces.append(ops.convert_to_numpy(trace))
            if self.record_every:
                paths.append(from_chain_space(model, ops.convert_to_numpy(path)))
        return np.concatenate(outputs, axis=0), traces, paths, accepted

    def _compiled_chain(self, model, num_steps: int):
        key = (
            num_steps,
            self.step_size,
            self.chain_temperature,
            self.noise_scale,
            self.metropolis,
            self.record_energy,
            self.record_every,
            self.jit_compile,
        )
        per_model = _COMPILED.setdefault(model, {})
        if key not in per_model:
            chain_fn = build_chain(
                latent_energy_fn(model, self.chain_temperature),
                num_steps=num_steps,
                step_size=self.step_size,
                noise_scale=self.noise_scale,
                metropolis=self.metropolis,
                record_energy=self.record_energy,
                use_fori_loop=self.jit_compile,
                record_every=self.record_every,
            )
            per_model[key] = backend.compile_function(model, chain_fn, self.jit_compile)
        return per_model[key]


def _temperature(
    temperature: float | None, calibration: EnergyCalibration | None
) -> float:
    """The temperature: given, `1 / calibration.slope`, or 1; checked."""
    if calibration is None:
        return _check_float(1.0 if temperature is None else temperature, "temperature")
    if not (np.isfinite(calibration.slope) and calibration.slope > 0):
        raise ValueError(
            "The energy calibration gives no temperature: its slope must be > 0 "
            "(real images of lower energy than generated ones), so that "
            "T = 1 / slope. Pass a fixed `temperature` instead. Received: "
            f"calibration.slope={calibration.slope!r}"
        )
    calibrated = 1.0 / calibration.slope
    if temperature is not None and not np.isclose(
        _check_float(temperature, "temperature"), calibrated, rtol=1e-9, atol=0.0
    ):
        raise ValueError(
            "`temperature` and `calibration` disagree: a calibration sets "
            f"temperature = 1 / slope = {calibrated!r}; pass one of them. "
            f"Received: temperature={temperature!r}, calibration={calibration!r}"
        )
    return calibrated


def path_steps(num_steps: int, record_every: int) -> list[int]:
    """The chain steps `record_every` records: `0, k, 2k, ...` and the last.

    Args:
        num_steps: int. Steps of the chain.
        record_every: int. `k`.

    Returns:
        list of int, one per frame of `DDLS.latent_path`.

    Example:

    >>> path_steps(10, 4)
    [0, 4, 8, 10]
    """
    return [
        min(row * record_every, num_steps)
        for row in range(-(-num_steps // record_every) + 1)
    ]


def to_chain_space(model, z: np.ndarray) -> np.ndarray:
    """Maps latents to the space the chain runs in (`arctanh` for uniform)."""
    z = np.asarray(z, dtype="float32")
    if model.latent_distribution == "uniform":
        limit = 1.0 - _UNIFORM_EDGE
        return np.arctanh(np.clip(z, -limit, limit)).astype("float32")
    return z


def from_chain_space(model, w: np.ndarray) -> np.ndarray:
    """Maps the chain's variables back to latents (`tanh` for uniform)."""
    if model.latent_distribution == "uniform":
        return np.tanh(w).astype("float32")
    return np.asarray(w, dtype="float32")


def latent_energy_fn(model, temperature: float):
    """Returns `U(w)`, the per-chain latent energy, as a `keras.ops` function.

    Args:
        model: a model of the library (`ek.models.BaseGAN`).
        temperature: float. `T`, divides the discriminator's energy.

    Returns:
        A callable from chain variables `(N, latent_dim)` to `(N,)`: for a
        normal prior `|w|^2 / 2 + E(G(w)) / T`; for a uniform prior
        `sum 2 log cosh(w) + E(G(tanh w)) / T` (prior and log-Jacobian of
        `z = tanh(w)`, up to a constant).
    """
    uniform = model.latent_distribution == "uniform"
    inverse_temperature = 1.0 / float(temperature)

    def energy_fn(w):
        if uniform:
            z = ops.tanh(w)
            magnitude = ops.abs(w)
            # 2 log cosh(w) without overflow, dropping the constant -2 log 2.
            prior = 2.0 * ops.sum(
                magnitude + ops.log1p(ops.exp(-2.0 * magnitude)), axis=1
            )
        else:
            z = w
            prior = 0.5 * ops.sum(ops.square(w), axis=1)
        images = model.generator(z, training=False)
        energy, _ = model.compute_energy(images, training=False)
        return prior + ops.cast(energy, "float32") * inverse_temperature

    return energy_fn


def build_chain(
    energy_fn,
    num_steps: int,
    step_size: float,
    noise_scale: float,
    metropolis: bool,
    record_energy: bool,
    use_fori_loop: bool = True,
    record_every: int | None = None,
):
    """The DDLS chain, written once in `keras.ops`.

    Args:
        energy_fn: callable. `U(w)` per chain, `(N, d) -> (N,)`.
        num_steps: int. Steps to run.
        step_size: float. `eps`.
        noise_scale: float. Scale of the injected noise.
        metropolis: bool. Accept or reject each step (MALA).
        record_energy: bool. Return `U` after every step.
        use_fori_loop: bool. `keras.ops.fori_loop` (to compile) or a Python
            loop (eager). Defaults to `True`.
        record_every: int. Record `w` every this many steps. Defaults to
            `None`.

    Returns:
        `chain(w, noise, uniforms) -> (w_last, accepted_steps (N,), trace,
        path)`; `noise` is `(num_steps, N, d)` standard normal, `uniforms`
        `(num_steps, N)` uniform on `[0, 1)` (read only with `metropolis`);
        `trace` is `(num_steps + 1, N)` with `record_energy`, else `(1, N)`
        holding the last energy; `path` is `w` at the steps of
        `path_steps(num_steps, record_every)`, `(num_frames, N, d)`, else
        `(1, N, d)` holding the start.
    """
    drift = 0.5 * step_size
    diffusion = math.sqrt(step_size) * noise_scale
    proposal_variance = step_size * noise_scale**2

    def chain(w, noise_steps, uniform_steps):
        w = ops.cast(w, "float32")
        energy, gradient = backend.input_value_and_grad(energy_fn, w)
        trace_rows = num_steps + 1 if record_energy else 1
        # Shapes from tensors, not from `w.shape`: a retraced `tf.function`
        # (a last batch of another size) sees the batch dimension as None.
        trace = ops.tile(energy[None, :], (trace_rows, 1))
        path_rows = len(path_steps(num_steps, record_every)) if record_every else 1
        path = ops.tile(w[None], (path_rows, 1, 1))

        def body(i, carry):
            w, energy, gradient, accepted, trace, path = carry
            noise = ops.take(noise_steps, i, axis=0)
            proposal = w - drift * gradient + diffusion * noise
            energy_new, gradient_new = backend.input_value_and_grad(energy_fn, proposal)
            if metropolis:
                # log q(w | w') - log q(w' | w) for the Gaussian proposals.
                backward = w - proposal + drift * gradient_new
                log_q_backward = -ops.sum(ops.square(backward), axis=1) / (
                    2.0 * proposal_variance
                )
                log_q_forward = -0.5 * ops.sum(ops.square(noise), axis=1)
                log_ratio = energy - energy_new + log_q_backward - log_q_forward
                uniform = ops.take(uniform_steps, i, axis=0)
                accept = ops.log(uniform) < log_ratio
                w = ops.where(accept[:, None], proposal, w)
                energy = ops.where(accept, energy_new, energy)
                gradient = ops.where(accept[:, None], gradient_new, gradient)
                accepted = accepted + ops.cast(accept, "float32")
            else:
                w, energy, gradient = proposal, energy_new, gradient_new
                accepted = accepted + 1.0
            row = i + 1 if record_energy else 0
            trace = ops.slice_update(trace, (row, 0), energy[None, :])
            if record_every:
                # Steps (r - 1) k + 1 ... r k all write row r: the last write
                # is step r k (or the chain's last step).
                frame = (i + record_every) // record_every
                path = ops.slice_update(path, (frame, 0, 0), w[None])
            return w, energy, gradient, accepted, trace, path

        carry = (w, energy, gradient, ops.zeros_like(energy), trace, path)
        if use_fori_loop:
            carry = ops.fori_loop(0, num_steps, body, carry)
        else:
            for i in range(num_steps):
                carry = body(i, carry)
        w, _, _, accepted, trace, path = carry
        return w, accepted, trace, path

    return chain

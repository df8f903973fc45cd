"""Plain JAX EBGAN-PT and WGAN-GP loops: the second baselines of `train_throughput.py`.

Pure `jax.numpy` / `jax.lax` networks (the same layers as `ek.networks`),
a hand-written Adam (lr 1e-3, beta1 0.5; optax is not installed here) and
one `jax.jit` of a full training step: one discriminator step and one
generator step with the EBGAN-PT losses (per-sample l2 energy, per-sample
hinge with margin 10, pulling-away term with weight 0.1). Batch norm uses
batch statistics and updates running averages, as Keras does in training.
Transposed convolutions are `jax.lax.conv_transpose`, which is what a JAX
user writes (its backward is slow on XLA:CPU; see /work/shared/DATA.md).

WGAN-GP (config E, kind `"mlp_critic"`): one `jax.jit` of a full step of
`critic_steps` critic updates (a `jax.lax.fori_loop`; fresh latents each, the
step's real batch) and one generator update. The loop matters on XLA:CPU: a
Python loop unrolled in the trace let XLA schedule the generator forwards of
later critic updates early (they do not depend on the critic), keeping their
activations live: 82 MB of temporaries instead of 18, and a step ~1.3x
slower here (measured 2026-11-30, interleaved with the Keras JAX step). The
penalty `lambda * mean((||grad_x D(x_hat)||_2 - 1)^2)`, `x_hat = eps * x +
(1 - eps) * G(z)` with `eps ~ U[0, 1]` per sample, is a `jax.grad` of the
critic's summed scores with respect to the images inside the
`jax.value_and_grad` of the critic loss (nested grads); the generator loss
is `-mean D(G(z))`. Adam(1e-4, beta1 0, beta2 0.9).

Usage (normally run by `train_throughput.py`):
    python benchmarks/reference_jax.py --config A --steps 20
    python benchmarks/reference_jax.py --config E --steps 10
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

_DIMS = ("NHWC", "HWIO", "NHWC")


def _glorot(key, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


class _Builder:
    """Collects parameters and batch-norm state while defining layers."""

    def __init__(self, seed: int):
        self.key = jax.random.PRNGKey(seed)
        self.params, self.state = {}, {}

    def _next(self):
        self.key, key = jax.random.split(self.key)
        return key

    def dense(self, name, fan_in, fan_out, bias=True):
        self.params[name] = {
            "w": _glorot(self._next(), (fan_in, fan_out), fan_in, fan_out)
        }
        if bias:
            self.params[name]["b"] = jnp.zeros((fan_out,))

    def conv(self, name, c_in, c_out, bias=True, transpose=False):
        # Transposed kernels are stored (4, 4, out, in), as Keras does.
        shape = (4, 4, c_out, c_in) if transpose else (4, 4, c_in, c_out)
        self.params[name] = {"w": _glorot(self._next(), shape, 16 * c_in, 16 * c_out)}
        if bias:
            self.params[name]["b"] = jnp.zeros((c_out,))

    def batch_norm(self, name, channels):
        self.params[name] = {"g": jnp.ones((channels,)), "b": jnp.zeros((channels,))}
        self.state[name] = {
            "mean": jnp.zeros((channels,)),
            "var": jnp.ones((channels,)),
        }


def _dense(p, x):
    y = x @ p["w"]
    return y + p["b"] if "b" in p else y


def _conv(p, x):
    y = jax.lax.conv_general_dilated(
        x, p["w"], (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DIMS
    )
    return y + p["b"] if "b" in p else y


def _conv_transpose(p, x):
    y = jax.lax.conv_transpose(x, p["w"], (2, 2), "SAME", dimension_numbers=_DIMS)
    return y + p["b"] if "b" in p else y


def _batch_norm(p, state, x, new_state, name):
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axes), x.var(axes)
    new_state[name] = {
        "mean": 0.99 * state[name]["mean"] + 0.01 * jax.lax.stop_gradient(mean),
        "var": 0.99 * state[name]["var"] + 0.01 * jax.lax.stop_gradient(var),
    }
    return (x - mean) * jax.lax.rsqrt(var + 1e-3) * p[name]["g"] + p[name]["b"]


def build(spec: dict, seed: int = 0):
    """Parameters, batch-norm state and the two apply functions of a config.

    Args:
        spec: dict. The fields of a config for the plain loops
            (`_common.reference_spec`).
        seed: int. Seed of the weights. Defaults to `0`.

    Returns:
        `(g_params, d_params, state, generate, discriminate)` where
        `generate(g_params, state, z, new_state)` returns images and
        `discriminate(d_params, state, x, new_state)` returns
        `(reconstruction, code)` (the scores `(N,)` for the kind
        `"mlp_critic"`); both write batch-norm statistics into `new_state`.
    """
    g, d = _Builder(seed), _Builder(seed + 1)
    height, width, channels = spec["image_shape"]
    pixels = height * width * channels
    if spec["kind"] in ("mlp", "mlp_critic"):
        fan = spec["latent_dim"]
        for i, units in enumerate(spec["hidden_units"]):
            g.dense(f"g{i}", fan, units, bias=False)
            g.batch_norm(f"gbn{i}", units)
            fan = units
        g.dense("gout", fan, pixels)

        def generate(p, state, z, new_state):
            x = z
            for i in range(len(spec["hidden_units"])):
                x = _dense(p[f"g{i}"], x)
                x = jax.nn.relu(_batch_norm(p, state, x, new_state, f"gbn{i}"))
            return jnp.tanh(_dense(p["gout"], x)).reshape(-1, height, width, channels)

    if spec["kind"] == "mlp_critic":
        fan = pixels
        for i, units in enumerate(spec["critic_units"]):
            d.dense(f"c{i}", fan, units)
            fan = units
        d.dense("score", fan, 1)

        def critic(p, state, images, new_state):
            x = images.reshape(images.shape[0], -1)
            for i in range(len(spec["critic_units"])):
                x = jax.nn.leaky_relu(_dense(p[f"c{i}"], x), 0.2)
            return _dense(p["score"], x)[:, 0]

        return g.params, d.params, g.state, generate, critic

    if spec["kind"] == "mlp":
        fan = pixels
        for i, units in enumerate(spec["encoder_units"]):
            d.dense(f"e{i}", fan, units)
            fan = units
        d.dense("dec", fan, pixels)

        def discriminate(p, state, images, new_state):
            x = images.reshape(images.shape[0], -1)
            for i in range(len(spec["encoder_units"])):
                x = jax.nn.relu(_dense(p[f"e{i}"], x))
            return jnp.tanh(_dense(p["dec"], x)).reshape(images.shape), x

        return g.params, d.params, {**g.state, **d.state}, generate, discriminate

    upsamplings = (height // 4).bit_length() - 1
    top = spec["generator_filters"] * 2 ** (upsamplings - 1)
    g.dense("project", spec["latent_dim"], 16 * top, bias=False)
    g.batch_norm("pbn", top)
    w = top
    for i in range(upsamplings - 1):
        g.conv(f"up{i}", w, w // 2, bias=False, transpose=True)
        g.batch_norm(f"upbn{i}", w // 2)
        w //= 2
    g.conv("gout", w, channels, transpose=True)
    filters = list(spec["discriminator_filters"])
    c = channels
    for i, f in enumerate(filters):
        d.conv(f"down{i}", c, f, bias=i == 0)
        if i > 0:
            d.batch_norm(f"downbn{i}", f)
        c = f
    for i, f in enumerate(reversed(filters[:-1])):
        d.conv(f"dup{i}", c, f, bias=False, transpose=True)
        d.batch_norm(f"dupbn{i}", f)
        c = f
    d.conv("dout", c, channels, transpose=True)

    def generate(p, state, z, new_state):
        x = _dense(p["project"], z).reshape(-1, 4, 4, top)
        x = jax.nn.relu(_batch_norm(p, state, x, new_state, "pbn"))
        for i in range(upsamplings - 1):
            x = _conv_transpose_io(p[f"up{i}"], x)
            x = jax.nn.relu(_batch_norm(p, state, x, new_state, f"upbn{i}"))
        return jnp.tanh(_conv_transpose_io(p["gout"], x))

    def discriminate(p, state, images, new_state):
        x = images
        for i in range(len(filters)):
            x = _conv(p[f"down{i}"], x)
            if i > 0:
                x = _batch_norm(p, state, x, new_state, f"downbn{i}")
            x = jax.nn.leaky_relu(x, 0.2)
        code = x
        for i in range(len(filters) - 1):
            x = _conv_transpose_io(p[f"dup{i}"], x)
            x = jax.nn.leaky_relu(_batch_norm(p, state, x, new_state, f"dupbn{i}"), 0.2)
        return jnp.tanh(_conv_transpose_io(p["dout"], x)), code

    return g.params, d.params, {**g.state, **d.state}, generate, discriminate


def _conv_transpose_io(p, x):
    # Kernels are stored (4, 4, out, in) like Keras; lax wants HWIO = (.., in, out).
    return _conv_transpose({**p, "w": jnp.swapaxes(p["w"], 2, 3)}, x)


def energy(discriminate, params, state, images, new_state):
    """Per-sample l2 reconstruction energy and the code."""
    reconstruction, code = discriminate(params, state, images, new_state)
    difference = (reconstruction - images).reshape(images.shape[0], -1)
    return jnp.sqrt(jnp.sum(difference**2, axis=1) + 1e-12), code


def pulling_away_term(code):
    """Mean squared cosine similarity of distinct generated codes."""
    flat = code.reshape(code.shape[0], -1)
    unit = flat / jnp.sqrt(jnp.sum(flat**2, axis=1, keepdims=True) + 1e-12)
    squared = (unit @ unit.T) ** 2
    n = flat.shape[0]
    return (jnp.sum(squared) - jnp.trace(squared)) / (n * (n - 1))


def adam_init(params):
    """Zero first and second moments and a step counter."""
    # Two separate trees: the jitted step donates its carry, buffer by buffer.
    return {
        "m": jax.tree_util.tree_map(jnp.zeros_like, params),
        "v": jax.tree_util.tree_map(jnp.zeros_like, params),
        "t": jnp.zeros((), jnp.int32),
    }


def adam_update(params, grads, opt, lr=1e-3, b1=0.5, b2=0.999, eps=1e-7):
    """One Adam step (Keras's epsilon); returns new params and state."""
    t = opt["t"] + 1
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, opt["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, opt["v"], grads)
    scale = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    params = jax.tree_util.tree_map(
        lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v
    )
    return params, {"m": m, "v": v, "t": t}


def make_wgan_gp_step(spec: dict, seed: int = 0):
    """The jitted full WGAN-GP training step and its initial carry.

    Args:
        spec: dict. The fields of a `"mlp_critic"` config for the plain loops
            (`_common.reference_spec`).
        seed: int. Seed of weights, latents and interpolation weights.
            Defaults to `0`.

    Returns:
        `(step, carry)`: `step(carry, real) -> (carry, (d_loss, g_loss))`,
        `d_loss` the last critic update's.
    """
    g_params, d_params, state, generate, critic = build(spec, seed)
    batch, latent_dim = spec["batch_size"], spec["latent_dim"]
    penalty_weight = spec["gradient_penalty_weight"]
    adam = {"lr": 1e-4, "b1": 0.0, "b2": 0.9}

    def d_loss_fn(d_params, real, fake, eps):
        def summed_scores(images):
            return critic(d_params, None, images, None).sum()

        eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
        mixed = eps * real + (1 - eps) * fake
        gradient = jax.grad(summed_scores)(mixed).reshape(batch, -1)
        norms = jnp.sqrt(jnp.sum(gradient**2, axis=1) + 1e-12)
        penalty = jnp.mean((norms - 1) ** 2)
        wasserstein = (
            critic(d_params, None, fake, None).mean()
            - critic(d_params, None, real, None).mean()
        )
        return wasserstein + penalty_weight * penalty

    def step(carry, real):
        g_params, d_params, state, g_opt, d_opt, key = carry

        def critic_update(_, critic_carry):
            d_params, d_opt, state, key, _ = critic_carry
            key, z_key, eps_key = jax.random.split(key, 3)
            new_state = dict(state)
            fake = jax.lax.stop_gradient(
                generate(
                    g_params,
                    state,
                    jax.random.normal(z_key, (batch, latent_dim)),
                    new_state,
                )
            )
            eps = jax.random.uniform(eps_key, (batch,))
            d_loss, d_grads = jax.value_and_grad(d_loss_fn)(d_params, real, fake, eps)
            d_params, d_opt = adam_update(d_params, d_grads, d_opt, **adam)
            return d_params, d_opt, new_state, key, d_loss

        d_params, d_opt, state, key, d_loss = jax.lax.fori_loop(
            0,
            spec["critic_steps"],
            critic_update,
            (d_params, d_opt, state, key, jnp.zeros((), jnp.float32)),
        )
        key, g_key = jax.random.split(key)

        def g_loss_fn(g_params):
            inner = {}
            z = jax.random.normal(g_key, (batch, latent_dim))
            fake = generate(g_params, state, z, inner)
            return -critic(d_params, None, fake, None).mean(), inner

        (g_loss, g_state), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_params
        )
        g_params, g_opt = adam_update(g_params, g_grads, g_opt, **adam)
        carry = (g_params, d_params, {**state, **g_state}, g_opt, d_opt, key)
        return carry, (d_loss, g_loss)

    carry = (g_params, d_params, state, adam_init(g_params), adam_init(d_params))
    return jax.jit(step, donate_argnums=0), carry + (jax.random.PRNGKey(seed),)


def make_step(spec: dict, seed: int = 0):
    """The jitted full training step and its initial carry.

    EBGAN-PT for the kinds `"mlp"` and `"conv"`; WGAN-GP
    (`make_wgan_gp_step`) for `"mlp_critic"`.

    Args:
        spec: dict. The fields of a config for the plain loops
            (`_common.reference_spec`).
        seed: int. Seed of weights and latents. Defaults to `0`.

    Returns:
        `(step, carry)`: `step(carry, real) -> (carry, (d_loss, g_loss))`.
    """
    if spec["kind"] == "mlp_critic":
        return make_wgan_gp_step(spec, seed)
    g_params, d_params, state, generate, discriminate = build(spec, seed)
    batch, latent_dim = spec["batch_size"], spec["latent_dim"]
    margin, pt_weight = spec["margin"], spec["pt_weight"]

    def step(carry, real):
        g_params, d_params, state, g_opt, d_opt, key = carry
        key, d_key, g_key = jax.random.split(key, 3)
        new_state = dict(state)
        fake = jax.lax.stop_gradient(
            generate(
                g_params,
                state,
                jax.random.normal(d_key, (batch, latent_dim)),
                new_state,
            )
        )

        def d_loss_fn(d_params):
            inner = {}
            energy_real, _ = energy(discriminate, d_params, state, real, inner)
            energy_fake, _ = energy(discriminate, d_params, state, fake, inner)
            loss = energy_real.mean() + jax.nn.relu(margin - energy_fake).mean()
            return loss, inner

        (d_loss, d_state), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            d_params
        )
        d_params, d_opt = adam_update(d_params, d_grads, d_opt)
        new_state.update(d_state)

        def g_loss_fn(g_params):
            inner = {}
            fake = generate(
                g_params, state, jax.random.normal(g_key, (batch, latent_dim)), inner
            )
            energy_fake, code = energy(discriminate, d_params, state, fake, {})
            return energy_fake.mean() + pt_weight * pulling_away_term(code), inner

        (g_loss, g_state), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_params
        )
        g_params, g_opt = adam_update(g_params, g_grads, g_opt)
        new_state.update(g_state)
        carry = (g_params, d_params, new_state, g_opt, d_opt, key)
        return carry, (d_loss, g_loss)

    carry = (g_params, d_params, state, adam_init(g_params), adam_init(d_params))
    return jax.jit(step, donate_argnums=0), carry + (jax.random.PRNGKey(seed),)


def measure(spec: dict, steps: int, warmup: int, repeats: int) -> list[float]:
    """Steps per second of the plain jitted loop, one value per repeat.

    Args:
        spec: dict. The fields of a config for the plain loops
            (`_common.reference_spec`).
        steps: int. Timed steps per repeat.
        warmup: int. Untimed steps (with compilation) before the repeats.
        repeats: int. Number of timed repeats.

    Returns:
        list of float, steps per second of each repeat.
    """
    step, carry = make_step(spec)
    rng = np.random.default_rng(1)
    real = jnp.asarray(
        rng.uniform(-1, 1, (spec["batch_size"], *spec["image_shape"])).astype("float32")
    )
    for _ in range(max(warmup, 1)):
        carry, losses = step(carry, real)
    jax.block_until_ready(losses)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            carry, losses = step(carry, real)
        jax.block_until_ready(losses)
        rates.append(steps / (time.perf_counter() - start))
    return rates


def main() -> None:
    import _common  # noqa: PLC0415 (benchmarks is not a package)
    import train_throughput  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="A")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overrides", default="{}", help="JSON merged into the config")
    args = parser.parse_args()
    config = train_throughput.CONFIGS[args.config]
    spec = _common.reference_spec(
        _common.with_overrides(config, json.loads(args.overrides))
    )
    rates = measure(spec, args.steps, args.warmup, args.repeats)
    print(json.dumps({"steps_per_s_runs": rates, "jax": jax.__version__}))


if __name__ == "__main__":
    main()

"""Plain PyTorch EBGAN-PT and WGAN-GP loops: the baselines of `train_throughput.py`.

What a PyTorch user would write by hand for the same networks and losses as
`ek.EBGANPT`: `torch.nn` modules, two `torch.optim.Adam` (lr 1e-3, beta1
0.5), per-sample "l2" reconstruction energy `||D(x) - x||`, per-sample hinge
with margin 10, pulling-away term with weight 0.1 on the generated codes,
one discriminator step and one generator step per batch. Images are NCHW
(PyTorch's layout); this changes no FLOP.

And for `ek.WGANGP` (config E): `critic_steps` critic updates per step, each
with fresh latents on the step's real batch, the penalty
`lambda * mean((||grad_x D(x_hat)||_2 - 1)^2)` at interpolates `x_hat = eps
* x + (1 - eps) * G(z)`, `eps ~ U[0, 1]` per sample, through
`torch.autograd.grad(create_graph=True)`; then one generator update on
`-mean D(G(z))` with the critic's `requires_grad` off (as the common
PyTorch port of the authors' code does, so that no critic weight gradient
is computed there); two `torch.optim.Adam(1e-4, betas=(0, 0.9))`.

Usage (normally run by `train_throughput.py`, one process per library):
    python benchmarks/reference_torch.py --config A --steps 20
    python benchmarks/reference_torch.py --config E --steps 10
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn


def mlp_generator(spec: dict) -> nn.Module:
    """The EBGAN paper's MNIST MLP generator (`ek.networks.ebgan_mlp_generator`).

    Dense without bias, batch norm and ReLU per hidden layer; dense and tanh
    to the pixels, reshaped to NCHW images.

    Args:
        spec: dict. `latent_dim`, `image_shape`, `hidden_units` of
            `_common.reference_spec`.

    Returns:
        The generator, from latents `(N, latent_dim)` to images `(N, C, H, W)`.
    """
    pixels = int(torch.tensor(spec["image_shape"]).prod())
    layers, width = [], spec["latent_dim"]
    for units in spec["hidden_units"]:
        layers += [nn.Linear(width, units, bias=False), nn.BatchNorm1d(units)]
        layers += [nn.ReLU()]
        width = units
    layers += [nn.Linear(width, pixels), nn.Tanh()]
    layers += [nn.Unflatten(1, _nchw(spec["image_shape"]))]
    return nn.Sequential(*layers)


def mlp_networks(spec: dict) -> tuple[nn.Module, nn.Module]:
    """Config A: the EBGAN paper's MNIST MLP generator and autoencoder critic.

    Args:
        spec: dict. `latent_dim`, `image_shape`, `hidden_units`,
            `encoder_units` of `_common.reference_spec`.

    Returns:
        `(generator, discriminator)`; the discriminator returns
        `(reconstruction, code)`.
    """
    generator = mlp_generator(spec)
    pixels = int(torch.tensor(spec["image_shape"]).prod())

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            encoder, width = [], pixels
            for units in spec["encoder_units"]:
                encoder += [nn.Linear(width, units), nn.ReLU()]
                width = units
            self.encoder = nn.Sequential(*encoder)
            self.decoder = nn.Sequential(nn.Linear(width, pixels), nn.Tanh())

        def forward(self, images):
            code = self.encoder(images.flatten(1))
            return self.decoder(code).view_as(images), code

    return generator, Discriminator()


def mlp_critic_networks(spec: dict) -> tuple[nn.Module, nn.Module]:
    """Config E: the EBGAN MLP generator and the MLP critic of WGAN-GP.

    Same layers as `ek.networks.ebgan_mlp_generator` (dense without bias,
    batch norm, ReLU; dense and tanh to the pixels) and
    `ek.networks.gan_mlp_discriminator` (dense and leaky ReLU 0.2 per hidden
    layer, then a dense layer to one score; no batch norm).

    Args:
        spec: dict. `latent_dim`, `image_shape`, `hidden_units`,
            `critic_units` of `_common.reference_spec`.

    Returns:
        `(generator, critic)`; the critic returns scores `(N,)`.
    """
    generator = mlp_generator(spec)
    pixels = int(torch.tensor(spec["image_shape"]).prod())
    layers, width = [nn.Flatten()], pixels
    for units in spec["critic_units"]:
        layers += [nn.Linear(width, units), nn.LeakyReLU(0.2)]
        width = units
    layers += [nn.Linear(width, 1), nn.Flatten(0)]
    return generator, nn.Sequential(*layers)


def _nchw(shape):
    height, width, channels = shape
    return (channels, height, width)


def conv_networks(spec: dict) -> tuple[nn.Module, nn.Module]:
    """Configs B and C: DCGAN generator and EBGAN convolutional autoencoder.

    Same layers as `ek.networks.dcgan_generator` and
    `ek.networks.ebgan_conv_discriminator`: 4x4 stride-2 (transposed)
    convolutions, batch norm, ReLU / leaky ReLU 0.2, tanh outputs.

    Args:
        spec: dict. `latent_dim`, `image_shape`, `generator_filters`,
            `discriminator_filters` of `_common.reference_spec`.

    Returns:
        `(generator, discriminator)`.
    """
    size, _, channels = spec["image_shape"]
    upsamplings = (size // 4).bit_length() - 1
    width = spec["generator_filters"] * 2 ** (upsamplings - 1)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.width = width
            self.project = nn.Linear(spec["latent_dim"], 16 * width, bias=False)
            layers, w = [nn.BatchNorm2d(width), nn.ReLU()], width
            for _ in range(upsamplings - 1):
                layers += [nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False)]
                layers += [nn.BatchNorm2d(w // 2), nn.ReLU()]
                w //= 2
            layers += [nn.ConvTranspose2d(w, channels, 4, 2, 1), nn.Tanh()]
            self.net = nn.Sequential(*layers)

        def forward(self, latents):
            return self.net(self.project(latents).view(-1, self.width, 4, 4))

    filters = list(spec["discriminator_filters"])

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            encoder, c = [], channels
            for i, f in enumerate(filters):
                encoder += [nn.Conv2d(c, f, 4, 2, 1, bias=i == 0)]
                encoder += [nn.BatchNorm2d(f)] if i > 0 else []
                encoder += [nn.LeakyReLU(0.2)]
                c = f
            decoder = []
            for f in reversed(filters[:-1]):
                decoder += [nn.ConvTranspose2d(c, f, 4, 2, 1, bias=False)]
                decoder += [nn.BatchNorm2d(f), nn.LeakyReLU(0.2)]
                c = f
            decoder += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
            self.encoder = nn.Sequential(*encoder)
            self.decoder = nn.Sequential(*decoder)

        def forward(self, images):
            code = self.encoder(images)
            return self.decoder(code), code

    return Generator(), Discriminator()


def energy(discriminator: nn.Module, images: torch.Tensor):
    """Per-sample l2 reconstruction energy and the code."""
    reconstruction, code = discriminator(images)
    difference = (reconstruction - images).flatten(1)
    return torch.sqrt(difference.square().sum(1) + 1e-12), code


def pulling_away_term(code: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine similarity of distinct generated codes."""
    unit = nn.functional.normalize(code.flatten(1), dim=1, eps=1e-6)
    squared = (unit @ unit.T).square()
    n = code.shape[0]
    return (squared.sum() - squared.diagonal().sum()) / (n * (n - 1))


def make_wgan_gp_step(spec: dict, seed: int = 0):
    """Builds the WGAN-GP networks, optimizers and one training-step closure.

    Args:
        spec: dict. The fields of a `"mlp_critic"` config for the plain loops
            (`_common.reference_spec`).
        seed: int. Torch seed for weights and latents. Defaults to `0`.

    Returns:
        `step(real)`, which runs `critic_steps` critic updates and one
        generator update on a real batch `(N, C, H, W)` and returns the last
        critic loss and the generator loss as tensors.
    """
    torch.manual_seed(seed)
    generator, critic = mlp_critic_networks(spec)
    d_optimizer = torch.optim.Adam(critic.parameters(), 1e-4, (0.0, 0.9))
    g_optimizer = torch.optim.Adam(generator.parameters(), 1e-4, (0.0, 0.9))
    batch, latent_dim = spec["batch_size"], spec["latent_dim"]
    penalty_weight = spec["gradient_penalty_weight"]

    def gradient_penalty(real, fake):
        eps = torch.rand(batch, 1, 1, 1)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (gradient,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        norms = torch.sqrt(gradient.flatten(1).square().sum(1) + 1e-12)
        return (norms - 1).square().mean()

    def step(real):
        for _ in range(spec["critic_steps"]):
            with torch.no_grad():
                fake = generator(torch.randn(batch, latent_dim))
            d_loss = critic(fake).mean() - critic(real).mean()
            d_loss = d_loss + penalty_weight * gradient_penalty(real, fake)
            d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_optimizer.step()

        critic.requires_grad_(False)
        g_loss = -critic(generator(torch.randn(batch, latent_dim))).mean()
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        critic.requires_grad_(True)
        return d_loss.detach(), g_loss.detach()

    return step


def make_step(spec: dict, seed: int = 0):
    """Builds the networks, optimizers and one training-step closure.

    EBGAN-PT for the kinds `"mlp"` and `"conv"`; WGAN-GP
    (`make_wgan_gp_step`) for `"mlp_critic"`.

    Args:
        spec: dict. The fields of a config for the plain loops
            (`_common.reference_spec`).
        seed: int. Torch seed for weights and latents. Defaults to `0`.

    Returns:
        `step(real)`, which runs one training step (one D step and one G
        step for EBGAN-PT) on a real batch `(N, C, H, W)` and returns the two
        losses as tensors.
    """
    if spec["kind"] == "mlp_critic":
        return make_wgan_gp_step(spec, seed)
    torch.manual_seed(seed)
    builder = mlp_networks if spec["kind"] == "mlp" else conv_networks
    generator, discriminator = builder(spec)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), 1e-3, (0.5, 0.999))
    g_optimizer = torch.optim.Adam(generator.parameters(), 1e-3, (0.5, 0.999))
    batch, latent_dim = spec["batch_size"], spec["latent_dim"]
    margin, pt_weight = spec["margin"], spec["pt_weight"]

    def step(real):
        with torch.no_grad():
            fake = generator(torch.randn(batch, latent_dim))
        energy_real, _ = energy(discriminator, real)
        energy_fake, _ = energy(discriminator, fake)
        d_loss = energy_real.mean() + torch.relu(margin - energy_fake).mean()
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()

        fake = generator(torch.randn(batch, latent_dim))
        energy_fake, code = energy(discriminator, fake)
        g_loss = energy_fake.mean() + pt_weight * pulling_away_term(code)
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        return d_loss.detach(), g_loss.detach()

    return step


def measure(spec: dict, steps: int, warmup: int, repeats: int) -> list[float]:
    """Steps per second of the plain loop, one value per repeat.

    Args:
        spec: dict. The fields of a config for the plain loops
            (`_common.reference_spec`).
        steps: int. Timed steps per repeat.
        warmup: int. Untimed steps before the first repeat.
        repeats: int. Number of timed repeats.

    Returns:
        list of float, steps per second of each repeat.
    """
    step = make_step(spec)
    generator = torch.Generator().manual_seed(1)
    real = torch.rand(
        (spec["batch_size"], *_nchw(spec["image_shape"])), generator=generator
    )
    real = real * 2 - 1
    for _ in range(warmup):
        step(real)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            losses = step(real)
        float(losses[1])
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
    print(json.dumps({"steps_per_s_runs": rates, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

"""Semi-supervised learning with EBGAN: the ladder network (LN) and EBGAN-LN.

The EBGAN paper's Table 2 on permutation-invariant MNIST: a bottom-layer-cost
ladder network, alone (LN) or as the energy of an EBGAN (EBGAN-LN) whose
generated images are contrastive data under a decaying margin.

Example:

```python
import ebgan_keras as ek

data = ek.data.semi_supervised.load_pi_mnist(num_labels=100, seed=0)
model = ek.semi_supervised.ebgan_ln(num_labels=100, seed=0)
model.compile()
model.fit(ek.semi_supervised.SemiSupervisedBatches(data, seed=0), epochs=1)
print(model.error_rate(data["x_test"], data["y_test"]))
```
"""

from __future__ import annotations

from collections.abc import Sequence

from ebgan_keras.data.semi_supervised import SemiSupervisedBatches
from ebgan_keras.data.semi_supervised import labelled_split
from ebgan_keras.data.semi_supervised import load_pi_mnist
from ebgan_keras.models.ladder import EBGANLN
from ebgan_keras.models.ladder import LinearDecayAfter
from ebgan_keras.networks.ladder import LadderNetwork
from ebgan_keras.networks.ladder import ladder_gan_generator
from ebgan_keras.networks.ladder import ladder_network

#: EBGAN-LN's margin schedule used by default here: the paper says only that
#: the margin decays toward 0 (found by a hyperparameter search, Appendix D);
#: these values are ours (in the units of the 5000-weighted bottom cost).
DEFAULT_MARGIN = 60.0
DEFAULT_MARGIN_DECAY_EPOCHS = 10


def ln(
    num_labels: int = 100,
    seed: int | None = None,
    layer_sizes: Sequence[int] = (1000, 500, 250, 250, 250, 10),
    noise_std: float = 0.3,
) -> EBGANLN:
    """The bottom-layer-cost ladder network alone (the table's LN).

    Args:
        num_labels: int. Picks the official bottom cost weight. Defaults to
            `100`.
        seed: int. Seeds the weights and the noise. Defaults to `None`.
        layer_sizes: tuple of int. Encoder widths. Defaults to the paper's.
        noise_std: float. Corruption std. Defaults to `0.3`.

    Returns:
        An `EBGANLN` with `margin=None` (its small generator is unused).
    """
    ladder = ladder_network(
        num_labels, layer_sizes=layer_sizes, noise_std=noise_std, seed=seed
    )
    generator = ladder_gan_generator(latent_dim=2, hidden_units=())
    return EBGANLN(generator, ladder, margin=None, seed=seed)


def ebgan_ln(
    num_labels: int = 100,
    seed: int | None = None,
    margin: float = DEFAULT_MARGIN,
    final_margin: float = 0.0,
    margin_decay_epochs: int = DEFAULT_MARGIN_DECAY_EPOCHS,
    margin_decay_start: int = 0,
    latent_dim: int = 100,
    generator_units: Sequence[int] = (500, 500),
    layer_sizes: Sequence[int] = (1000, 500, 250, 250, 250, 10),
    noise_std: float = 0.3,
) -> EBGANLN:
    """EBGAN-LN: the bottom-layer-cost ladder as EBGAN's energy, an MLP generator.

    Args:
        num_labels: int. Picks the official bottom cost weight. Defaults to
            `100`.
        seed: int. Seeds the weights, the noise and the latents. Defaults to
            `None`.
        margin: float. Initial margin. Defaults to `DEFAULT_MARGIN`.
        final_margin: float. Margin at the end of the decay. Defaults to `0`.
        margin_decay_epochs: int. Epochs of the linear decay. Defaults to
            `DEFAULT_MARGIN_DECAY_EPOCHS`.
        margin_decay_start: int. Epochs before it starts. Defaults to `0`.
        latent_dim: int. Latent size. Defaults to `100`.
        generator_units: tuple of int. The generator's hidden widths.
            Defaults to `(500, 500)`.
        layer_sizes: tuple of int. Encoder widths. Defaults to the paper's.
        noise_std: float. Corruption std. Defaults to `0.3`.

    Returns:
        An `EBGANLN`.
    """
    ladder = ladder_network(
        num_labels, layer_sizes=layer_sizes, noise_std=noise_std, seed=seed
    )
    generator = ladder_gan_generator(latent_dim, hidden_units=generator_units)
    return EBGANLN(
        generator,
        ladder,
        margin=margin,
        final_margin=final_margin,
        margin_decay_epochs=margin_decay_epochs,
        margin_decay_start=margin_decay_start,
        seed=seed,
    )


__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_MARGIN_DECAY_EPOCHS",
    "EBGANLN",
    "LadderNetwork",
    "LinearDecayAfter",
    "SemiSupervisedBatches",
    "ebgan_ln",
    "labelled_split",
    "ladder_gan_generator",
    "ladder_network",
    "ln",
    "load_pi_mnist",
]

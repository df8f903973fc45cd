"""The base of every GAN of the library: one training step for all backends."""

from __future__ import annotations

import functools
import sys

import keras
import numpy as np
from keras import ops

from ebgan_keras import backend
from ebgan_keras.models.gan_optimizer import GANOptimizer
from ebgan_keras.models.hooks import ModelHooks
from ebgan_keras.models.hooks import TerminateOnNonFinite
from ebgan_keras.utils import LATENT_DISTRIBUTIONS
from ebgan_keras.utils import predict_in_batches

_SEED_STATE_KEY = "seed_generator_state"
#: Static loss scale of each optimizer under the "mixed_float16" policy.
FLOAT16_LOSS_SCALE = 2.0**10


#: The zoo's preset functions (`class_presets`, `from_preset`,
#: `save_to_preset`), registered by `ebgan_keras.zoo.presets` when it is
#: imported (the package imports it with the models).
_PRESET_FUNCTIONS: dict = {}


def register_preset_functions(**functions) -> None:
    """Registers the functions behind `from_preset`, `presets`, `save_to_preset`.

    Args:
        **functions: callables named `class_presets`, `from_preset` and
            `save_to_preset` (`ebgan_keras.zoo.presets` registers its own).
    """
    _PRESET_FUNCTIONS.update(functions)


def _preset_function(name: str):
    if name not in _PRESET_FUNCTIONS:
        raise RuntimeError(
            "Presets come from the model zoo, which registers them when the "
            "package is imported: `import ebgan_keras` (or `import "
            "ebgan_keras.zoo.presets`) first."
        )
    return _PRESET_FUNCTIONS[name]


class _classproperty(property):
    """A property of the class (KerasHub's `classproperty`): `ek.EBGANPT.presets`."""

    def __get__(self, _, owner):
        return self.fget(owner)


@keras.saving.register_keras_serializable(package="ebgan_keras")
class BaseGAN(keras.Model):
    """Base class of every GAN of the library: a generator, a critic, one step.

    It holds everything the models share: the networks and the latent prior,
    `compile` with two optimizers, `sample_latents`, `generate`, `energy`,
    the training and test steps on TensorFlow, JAX and PyTorch, `fit`, input
    checks and saving. A model is its hooks:

    - `compute_energy(images, training)`: per-sample energy (low = real) and
      an auxiliary output of the discriminator.
    - `discriminator_loss(real, latents, training)` and
      `generator_loss(latents, training)`: `(loss, aux)` each
      (`generator_loss(latents, training, real)` when the class sets
      `generator_loss_takes_real`).
    - `check_discriminator(discriminator)`: validates the network's outputs.
    - Optional: `default_optimizers()`, `update_state_variables(values)`
      (model state such as BEGAN's `k`, after both updates), the property
      `trains_generator`, `on_train_begin()` and `on_epoch_end(epoch, logs)`
      (epoch-level rules such as MAGAN's margin; they return whether the
      compiled step must be rebuilt), `discriminator_steps` (updates of the
      discriminator per step), `discriminator_variables` and
      `generator_variables` (what each optimizer trains), `extra_optimizers`
      and `apply_generator_gradients` (a third network with its own
      optimizer, BiGAN's encoder).

    `ek.EnergyGAN` (autoencoder discriminator) and `ek.GAN` (logit
    discriminator) are its two direct subclasses.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images
            `(N, H, W, C)`.
        discriminator: `keras.Model`. Scores images; what it returns is set
            by the subclass (`check_discriminator`).
        latent_dim: int. Size of the latent vector. Defaults to the size of
            the generator's input.
        latent_distribution: str. `"normal"` (standard Gaussian) or
            `"uniform"` (on `[-1, 1]`). Defaults to the model's paper setting.
        seed: int. Seeds the model's `keras.random.SeedGenerator`, which draws
            every latent of training: same seed, same run on one backend.
            Defaults to `None` (random).
        **kwargs: other arguments of `keras.Model` (e.g. `name`).
    """

    default_latent_distribution = "normal"
    #: Per-step values averaged over the epoch in the logs.
    tracked_logs = ("d_loss", "g_loss", "energy_real", "energy_fake")
    #: Model state logged as its value after the step (e.g. BEGAN's `k`).
    state_logs = ()
    #: Discriminator updates per training step, each with fresh latents and
    #: the same real batch (WGAN-GP's `n_critic`).
    discriminator_steps = 1
    #: The smallest batch the losses are defined for (EBGAN-PT's pulling-away
    #: term needs a pair); `fit` refuses smaller batches, naming why.
    min_batch_size = 1
    min_batch_reason = ""
    #: Whether `generator_loss` also takes the step's real batch (`real=`):
    #: BiGAN's encoder is trained in the generator step, on real images.
    generator_loss_takes_real = False
    #: The model's networks by role: each is a constructor argument and an
    #: attribute of that name. Configs (one `{"builder", "kwargs"}` per
    #: role), zoo files (`{role}.weights.h5`), cards, cost estimates and
    #: batch-norm synchronisation loop over them; a model with a third
    #: network (BiGAN's `encoder`) adds its role here.
    network_roles = ("generator", "discriminator")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim=None,
        latent_distribution=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.latent_distribution = (
            latent_distribution or self.default_latent_distribution
        )
        self.seed = seed

        if self.latent_distribution not in LATENT_DISTRIBUTIONS:
            raise ValueError(
                f"`latent_distribution` must be one of {LATENT_DISTRIBUTIONS}. "
                f"Received: latent_distribution={self.latent_distribution!r}"
            )
        for name, network in (
            ("generator", generator),
            ("discriminator", discriminator),
        ):
            if not isinstance(network, keras.Layer):
                raise TypeError(
                    f"`{name}` must be a Keras model. Received: {name}={network!r}"
                )
        self.latent_dim, self.image_shape = _check_generator(
            generator, latent_dim, type(self).__name__
        )
        self.check_discriminator(discriminator)
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self._trackers = {
            name: keras.metrics.Mean(name=name) for name in self.tracked_logs
        }
        self.d_optimizer = None
        self.g_optimizer = None
        # The sub-models are built; without this, `fit` would call the model
        # on images to build it.
        self.built = True

    # ------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------
    def networks(self) -> dict:
        """The model's networks by role, in the order of `network_roles`.

        (A method, not a property: Keras' saving walks a model's properties,
        and a dict of the networks would give them a second path.)

        Returns:
            A dict `{role: keras.Model}`, e.g. `{"generator": ...,
            "discriminator": ...}`.
        """
        return {role: getattr(self, role) for role in self.network_roles}

    @classmethod
    def config_for_epochs(cls, model_kwargs: dict, epochs: int | None) -> dict:
        """The constructor kwargs of a run of `epochs` epochs (the builder asks).

        A model whose defaults depend on the length of the run (MAGAN's
        pre-training epochs) overrides this; here the kwargs are returned as
        they are.

        Args:
            model_kwargs: dict. The config's `model` kwargs.
            epochs: int or None. The run's epochs.

        Returns:
            The kwargs to construct the model with.
        """
        del epochs
        return model_kwargs

    def default_optimizers(self) -> tuple:
        """The optimizers `compile` uses when none is given.

        Returns:
            `(d_optimizer, g_optimizer)`; here `Adam(2e-4, beta_1=0.5)` for
            both (the DCGAN setting). Models override it with their papers'.
        """
        return (
            keras.optimizers.Adam(2e-4, beta_1=0.5),
            keras.optimizers.Adam(2e-4, beta_1=0.5),
        )

    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        steps_per_execution: int = 1,
        jit_compile="auto",
        run_eagerly: bool = False,
        **kwargs,
    ) -> None:
        """Configures the two optimizers and how the training step runs.

        Args:
            d_optimizer: `keras.optimizers.Optimizer` or its string id.
                Updates the discriminator. Defaults to the paper's setting.
            g_optimizer: `keras.optimizers.Optimizer` or its string id.
                Updates the generator. Defaults to the paper's setting.
            steps_per_execution: int. Training steps per compiled call.
                Defaults to `1`.
            jit_compile: bool or `"auto"`. XLA on TensorFlow, `jax.jit` on
                JAX, `torch.compile` on PyTorch. Defaults to `"auto"`.
            run_eagerly: bool. Run the step eagerly, for debugging.
                Defaults to `False`.
            **kwargs: other arguments of `keras.Model.compile`, except
                `optimizer`, `loss` and `metrics`. Under the
                `"mixed_float16"` policy, an optimizer without a
                `loss_scale_factor` gets `FLOAT16_LOSS_SCALE` (2**10),
                unless `auto_scale_loss=False`.
        """
        for name in ("optimizer", "loss", "metrics"):
            if kwargs.get(name) is not None:
                raise ValueError(
                    f"{type(self).__name__}.compile takes `d_optimizer` and "
                    f"`g_optimizer`; it has its own losses and logs. "
                    f"Received: {name}={kwargs[name]!r}"
                )
            kwargs.pop(name, None)
        default_d, default_g = self.default_optimizers()
        self.d_optimizer = (
            default_d if d_optimizer is None else keras.optimizers.get(d_optimizer)
        )
        self.g_optimizer = (
            default_g if g_optimizer is None else keras.optimizers.get(g_optimizer)
        )
        if self.d_optimizer is self.g_optimizer:
            raise ValueError(
                "`d_optimizer` and `g_optimizer` must be two optimizer objects; "
                "the same object was passed for both."
            )
        # Under mixed_float16, float16 gradients would underflow: each
        # optimizer scales its loss by a static factor (MultiOptimizer, the
        # container of both, rejects a LossScaleOptimizer); a step whose
        # scaled gradients overflow is skipped (see `_zero_if_not_finite`).
        if (
            kwargs.pop("auto_scale_loss", True)
            and self.dtype_policy.name == "mixed_float16"
        ):
            for optimizer in (self.d_optimizer, self.g_optimizer):
                if optimizer.loss_scale_factor is None:
                    optimizer.loss_scale_factor = FLOAT16_LOSS_SCALE
        extra = self.extra_optimizers
        for optimizer, _ in extra.values():
            # The generator step's loss is scaled by `g_optimizer`; every
            # optimizer of that step must unscale by the same factor.
            optimizer.loss_scale_factor = self.g_optimizer.loss_scale_factor
        optimizer = GANOptimizer(
            self.d_optimizer,
            self.g_optimizer,
            self.discriminator_variables,
            extra_routes=list(extra.values()),
        )
        super().compile(
            optimizer=optimizer,
            auto_scale_loss=False,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
            **kwargs,
        )
        # Built now, so that loading a saved model restores both optimizers.
        optimizer.build(self.trainable_variables)
        self._compile_settings = {
            "steps_per_execution": steps_per_execution,
            "jit_compile": jit_compile,
            "run_eagerly": run_eagerly,
        }

    def sample_latents(self, num_samples, seed=None):
        """Draws latents from the prior of the model, in the graph.

        (Samplers and exports draw with numpy instead:
        `ebgan_keras.utils.prior_latents`.)

        Args:
            num_samples: int or scalar tensor. How many latents.
            seed: int or `keras.random.SeedGenerator`. Defaults to the
                model's own seed generator (which then moves on).

        Returns:
            A float32 tensor of shape `(num_samples, latent_dim)`.
        """
        seed = self.seed_generator if seed is None else seed
        shape = (num_samples, self.latent_dim)
        if self.latent_distribution == "uniform":
            return keras.random.uniform(shape, minval=-1.0, maxval=1.0, seed=seed)
        return keras.random.normal(shape, seed=seed)

    def generate(self, num_or_latents, seed=None, batch_size: int = 256):
        """Generates images, from a number of samples or from given latents.

        Args:
            num_or_latents: int, or an array of latents `(N, latent_dim)`.
            seed: int. Seed of the latents when a number is given; the same
                seed gives the same images. Defaults to the model's own seed
                generator.
            batch_size: int. Images per forward pass. Defaults to `256`.

        Returns:
            A numpy array of images `(N, H, W, C)`, values in the generator's
            output range.
        """
        if isinstance(num_or_latents, (int, np.integer)):
            if num_or_latents < 1:
                raise ValueError(
                    "`num_or_latents` must be a positive number of samples or "
                    f"an array of latents. Received: {num_or_latents!r}"
                )
            latents = self.sample_latents(int(num_or_latents), seed=seed)
        else:
            latents = num_or_latents
            shape = tuple(ops.shape(latents))
            if len(shape) != 2 or shape[1] != self.latent_dim:
                raise ValueError(
                    f"Latents must have shape (N, {self.latent_dim}) for this "
                    f"{type(self).__name__}. Received: shape={shape}"
                )
        return predict_in_batches(
            lambda z: self.generator(z, training=False), latents, batch_size
        )

    def energy(self, images, batch_size: int = 256):
        """Per-sample energy of images under the discriminator (low = real).

        Args:
            images: array `(N, H, W, C)` of float images: data in `[-1, 1]`
                or the generator's outputs (not range-checked).
            batch_size: int. Images per forward pass. Defaults to `256`.

        Returns:
            A float32 numpy array of shape `(N,)`.
        """
        # No range check: generator outputs (BEGAN's have no tanh) may leave
        # [-1, 1] slightly, and their energy is what samplers use.
        images = self._check_image_array(images, "images", check_range=False)
        return predict_in_batches(
            lambda x: self.compute_energy(x, training=False)[0], images, batch_size
        )

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    # ------------------------------------------------------------------
    # What each model defines
    # ------------------------------------------------------------------
    def check_discriminator(self, discriminator) -> None:
        """Raises a `ValueError` if the discriminator's outputs do not fit.

        Called by `__init__` once `latent_dim` and `image_shape` are known;
        `self.discriminator_output_spec()` gives the symbolic outputs on
        images.
        """
        del discriminator

    def compute_energy(self, images, training: bool = False):
        """Per-sample energy and an auxiliary output, as backend tensors.

        Args:
            images: tensor `(N, H, W, C)`.
            training: bool. Run the discriminator in training mode.

        Returns:
            `(energy, aux)`: float32 energies `(N,)` (low = looks real) and
            what the model's losses also need (a code, the logits).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define `compute_energy`."
        )

    def discriminator_loss(self, real, latents, training: bool = True):
        """Returns `(loss, aux)` of the discriminator on one batch."""
        raise NotImplementedError(
            f"{type(self).__name__} must define `discriminator_loss`."
        )

    def generator_loss(self, latents, training: bool = True):
        """Returns `(loss, aux)` of the generator on one batch."""
        raise NotImplementedError(
            f"{type(self).__name__} must define `generator_loss`."
        )

    def update_state_variables(self, values: dict) -> dict:
        """Updates model state (`k`, margins) after both updates of a step.

        Args:
            values: dict. The step's losses and auxiliary values (averaged
                over the replicas under `tf.distribute`).

        Returns:
            A dict of further values to log (names in `tracked_logs` are
            averaged over the epoch, names in `state_logs` shown as is).
        """
        del values
        return {}

    @property
    def trains_generator(self) -> bool:
        """Whether the current phase of training updates the generator.

        Read when the step is traced: a hook that changes it returns `True`
        so that the step is rebuilt.
        """
        return True

    @property
    def discriminator_variables(self) -> list:
        """What `d_optimizer` trains: the discriminator's trainable variables."""
        return self.discriminator.trainable_variables

    @property
    def generator_variables(self) -> list:
        """What `g_optimizer` trains: the generator's trainable variables."""
        return self.generator.trainable_variables

    @property
    def extra_optimizers(self) -> dict:
        """Optimizers beyond `d_optimizer` and `g_optimizer`, by argument name.

        A model with a third network (BiGAN's encoder) returns
        `{"e_optimizer": (optimizer, variables)}`; the base carries it in
        `model.optimizer` on every backend and saves it in the compile config.
        Defaults to `{}`.
        """
        return {}

    def apply_generator_gradients(self, gradients: list, variables: list) -> None:
        """Applies the generator step's gradients to `generator_variables`.

        Here `g_optimizer` updates them all; a model whose generator step also
        trains another network (BiGAN's encoder) sends each part to its own
        optimizer.

        Args:
            gradients: list of tensors, in the order of `variables`.
            variables: list of `keras.Variable`. `generator_variables`.
        """
        backend.apply_gradients(self.g_optimizer, gradients, variables)

    def on_train_begin(self) -> bool:
        """Called when `fit` starts, after the state was restored (resume).

        Returns:
            Whether the compiled step must be rebuilt. Defaults to `False`.
        """
        return False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> bool:
        """Applies the model's end-of-epoch rule; called by `fit`.

        Args:
            epoch: int. Index of the epoch that ended.
            logs: dict. The epoch's logs; a rule may add to them.

        Returns:
            Whether the compiled step must be rebuilt. Defaults to `False`.
        """
        del epoch, logs
        return False

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers.values())

    def train_step(self, *args):
        return backend.stateful_step(self, self._train_step, *args)

    def test_step(self, *args):
        return backend.stateful_step(self, self._test_step, *args, training=False)

    def _test_step(self, data):
        """Losses and energies on a batch, in inference mode, without updates."""
        real = self._unpack_images(data)
        latents = self.sample_latents(ops.shape(real)[0])
        d_loss, d_aux = self.discriminator_loss(real, latents, training=False)
        values = {"d_loss": d_loss, **d_aux}
        if self.trains_generator:
            g_loss, g_aux = self._generator_loss_fn(latents, real, training=False)()
            values.update({"g_loss": g_loss, **g_aux})
        return self._update_logs(values)

    def _train_step(self, data):
        if self.d_optimizer is None:
            raise RuntimeError(
                f"Call `{type(self).__name__}.compile()` before training."
            )
        real = self._unpack_images(data)
        batch_size = ops.shape(real)[0]

        d_variables = self.discriminator_variables
        for _ in range(self.discriminator_steps):
            d_latents = self._training_latents(batch_size)
            d_loss, d_aux, d_grads = _scaled_value_and_grad(
                self.d_optimizer,
                functools.partial(self.discriminator_loss, real, d_latents),
                d_variables,
            )
            backend.apply_gradients(
                self.d_optimizer, _zero_if_not_finite(d_loss, d_grads), d_variables
            )
        values = {"d_loss": d_loss, **d_aux}

        if self.trains_generator:
            g_variables = self.generator_variables
            g_latents = self._training_latents(batch_size)
            g_loss, g_aux, g_grads = _scaled_value_and_grad(
                self.g_optimizer,
                self._generator_loss_fn(g_latents, real),
                g_variables,
            )
            self.apply_generator_gradients(
                _zero_if_not_finite(g_loss, g_grads), g_variables
            )
            values.update({"g_loss": g_loss, **g_aux})

        self.optimizer.iterations.assign_add(1)
        # Under `tf.distribute`, every replica then updates `k`, margins and
        # logs from the same global-batch values.
        values = backend.cross_replica_mean(values)
        values.update(self.update_state_variables(values))
        return self._update_logs(values)

    def _generator_loss_fn(self, latents, real, training: bool = True):
        """`generator_loss` on `latents` (and `real`, if it takes it), unevaluated."""
        if self.generator_loss_takes_real:
            return functools.partial(
                self.generator_loss, latents, training=training, real=real
            )
        return functools.partial(self.generator_loss, latents, training=training)

    def _update_logs(self, values: dict) -> dict:
        logs = {}
        for name, value in values.items():
            if name in self._trackers:
                self._trackers[name].update_state(value)
                logs[name] = self._trackers[name].result()
            elif name in self.state_logs:
                logs[name] = value
        return logs

    def _training_latents(self, batch_size):
        replicas = backend.num_replicas()
        if replicas == 1:
            return self.sample_latents(batch_size)
        # Under `tf.distribute` the seed generator is mirrored: each replica
        # takes its own slice of one global draw, so replicas never share
        # latents and the step equals the same global batch on one device.
        latents = self.sample_latents(batch_size * replicas)
        start = backend.replica_id() * batch_size
        return ops.slice(latents, (start, 0), (batch_size, self.latent_dim))

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        """Trains the GAN; see `keras.Model.fit`.

        `x` is a numpy array of float images `(N, H, W, C)` in `[-1, 1]` or a
        `tf.data.Dataset` (or other Keras data source) yielding them; `y` is
        ignored. A non-finite loss stops training with an error before any
        weight becomes NaN (`TerminateOnNonFinite`, added first), and the
        model's `on_train_begin` / `on_epoch_end` hooks run (`ModelHooks`,
        added last, unless one is passed).
        """
        if isinstance(x, np.ndarray):
            self._check_image_array(x, "x")
            batch_size = kwargs.get("batch_size") or 32  # Keras's default
            self._check_batch_size(batch_size, "batch_size")
            remainder = len(x) % batch_size
            if 0 < remainder < self.min_batch_size:
                raise ValueError(
                    f"{type(self).__name__}: {len(x)} images in batches of "
                    f"{batch_size} leave a last batch of {remainder}, and "
                    f"{self.min_batch_reason}. Drop {remainder} image(s) or choose "
                    f"another batch size. Received: x with {len(x)} images, "
                    f"batch_size={batch_size}"
                )
        elif _is_tf_dataset(x):
            # Checked like numpy inputs, on the first batch: a pipeline of
            # uint8 pixels in [0, 255] must not train silently.
            first = keras.utils.unpack_x_y_sample_weight(next(iter(x.take(1))))[0]
            first = np.asarray(first)
            if not np.issubdtype(first.dtype, np.floating):
                raise ValueError(
                    f"`x` must yield float images in [-1, 1] (for uint8 pixels "
                    "use `ek.data.from_arrays` or map `x / 127.5 - 1`). Received: "
                    f"a dataset whose first batch has dtype {first.dtype}"
                )
            self._check_image_array(first, "x (its first batch)")
            self._check_batch_size(len(first), "the first batch of `x`")
            kwargs.setdefault("shuffle", False)
        elif x is not None and not isinstance(x, (list, tuple, dict)):
            # Datasets and generators bring their own order; Keras would warn.
            kwargs.setdefault("shuffle", False)
        steps_per_epoch = kwargs.get("steps_per_epoch")
        per_call = int(getattr(self, "steps_per_execution", 1) or 1)
        if steps_per_epoch and per_call > 1 and steps_per_epoch % per_call:
            # Keras runs whole executions: 3 steps per epoch with 10 steps per
            # execution would silently run 10 steps (measured on Keras 3.15).
            raise ValueError(
                "`steps_per_epoch` must be a multiple of the `steps_per_execution` "
                f"given to compile ({per_call}). Received: "
                f"steps_per_epoch={steps_per_epoch}"
            )
        callbacks = list(callbacks or [])
        if not any(isinstance(c, TerminateOnNonFinite) for c in callbacks):
            # First, so that no checkpoint callback sees a non-finite step.
            callbacks.insert(0, TerminateOnNonFinite())
        if not any(isinstance(c, ModelHooks) for c in callbacks):
            # Last, so that a restoring callback (BackupAndRestore) runs first.
            callbacks.append(ModelHooks())
        return super().fit(x, y, *args, callbacks=callbacks, **kwargs)

    # ------------------------------------------------------------------
    # Saving
    # ------------------------------------------------------------------
    def save_own_variables(self, store):
        super().save_own_variables(store)
        # Keras leaves seed generators out of weight files; the latents of a
        # resumed run must continue where the interrupted run stopped.
        store[_SEED_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        keys = [key for key in store.keys() if key != _SEED_STATE_KEY]
        super().load_own_variables({key: store[key] for key in keys})
        if _SEED_STATE_KEY in store.keys():
            state = self.seed_generator.state
            state.assign(ops.cast(np.asarray(store[_SEED_STATE_KEY]), state.dtype))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                **{
                    role: keras.saving.serialize_keras_object(network)
                    for role, network in self.networks().items()
                },
                "latent_dim": self.latent_dim,
                "latent_distribution": self.latent_distribution,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for name in cls.network_roles:
            config[name] = keras.saving.deserialize_keras_object(
                config[name], custom_objects=custom_objects
            )
        return cls(**config)

    def get_compile_config(self):
        if self.d_optimizer is None:
            return None
        extra = {
            name: keras.saving.serialize_keras_object(optimizer)
            for name, (optimizer, _) in self.extra_optimizers.items()
        }
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            **extra,
            **self._compile_settings,
        }

    def compile_from_config(self, config):
        config = dict(config)
        for name in [key for key in config if key.endswith("_optimizer")]:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        self.compile(**config)

    # ------------------------------------------------------------------
    # Presets (KerasHub's API; `ebgan_keras.zoo.presets` does the work and
    # registers itself here: the core names no module of the zoo above it)
    # ------------------------------------------------------------------
    @_classproperty
    def presets(cls) -> dict:
        """The shipped presets of this class and its subclasses, by name.

        Returns:
            dict. Entry name to its summary, class, image shape, weights
            status and FID (`ek.zoo.list_entries()` rows).
        """
        return _preset_function("class_presets")(cls)

    @classmethod
    def from_preset(cls, preset, load_weights: bool = True, **kwargs):
        """A model from a preset: a zoo entry by name, folder or URL.

        Args:
            preset: str or path. A name of `cls.presets`, the path of a
                preset folder (`save_to_preset`), or
                `"https://.../NAME#sha256=HEX"` (the sha256 of its
                `metadata.json`). A preset of another class is refused.
            load_weights: bool. Load the trained weights; `False` gives
                fresh ones. Defaults to `True`.
            **kwargs: constructor arguments replacing the preset's model
                settings (e.g. `margin=5.0`, `seed=1`).

        Returns:
            The model, every file checked against its sha256, compiled.

        Example:

        ```python
        model = ek.EBGANPT.from_preset("ebgan_pt_mnist")
        ```
        """
        return _preset_function("from_preset")(cls, preset, load_weights, **kwargs)

    def save_to_preset(self, preset_dir) -> None:
        """Saves the model as a preset folder (a zoo entry) for `from_preset`.

        Args:
            preset_dir: str or path. The folder; its name is the preset's.
        """
        _preset_function("save_to_preset")(self, preset_dir)

    # ------------------------------------------------------------------
    # Input checks and helpers
    # ------------------------------------------------------------------
    def discriminator_output_spec(self):
        """The discriminator's symbolic outputs on images `(None, *image_shape)`."""
        return _symbolic_call(
            self.discriminator, (None, *self.image_shape), "discriminator"
        )

    def _unpack_images(self, data):
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        shape = tuple(real.shape)
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape:
            raise ValueError(
                f"{type(self).__name__} expects batches of images of shape "
                f"(batch, {', '.join(map(str, self.image_shape))}), the "
                f"generator's output shape. Received: batch of shape {shape}"
            )
        return ops.cast(real, "float32")

    def _check_batch_size(self, batch_size: int, name: str) -> None:
        if batch_size < self.min_batch_size:
            raise ValueError(
                f"{type(self).__name__} cannot train on batches of "
                f"{batch_size}: {self.min_batch_reason}. Use batches of at least "
                f"{self.min_batch_size}. Received: {name}={batch_size}"
            )

    def _check_image_array(self, images, name: str, check_range: bool = True):
        shape = tuple(ops.shape(images))
        if len(shape) != 4 or tuple(shape[1:]) != self.image_shape:
            raise ValueError(
                f"`{name}` must be images of shape (N, "
                f"{', '.join(map(str, self.image_shape))}) for this "
                f"{type(self).__name__}. Received: {name} with shape {shape}"
            )
        if isinstance(images, np.ndarray):
            if images.size == 0:
                raise ValueError(
                    f"`{name}` holds no images. Received: {name} with shape {shape}"
                )
            if not np.issubdtype(images.dtype, np.floating):
                raise ValueError(
                    f"`{name}` must be float images in [-1, 1] (for uint8 "
                    "pixels use `ek.data.from_arrays` or `x / 127.5 - 1`). "
                    f"Received: {name} with dtype {images.dtype}"
                )
            if not np.all(np.isfinite(images)):
                raise ValueError(
                    f"`{name}` contains NaN or infinite values "
                    f"({int(np.size(images) - np.isfinite(images).sum())} of "
                    f"{np.size(images)}). Received: {name} with NaN/Inf"
                )
            low, high = float(images.min()), float(images.max())
            if check_range and (low < -1.0 - 1e-3 or high > 1.0 + 1e-3):
                raise ValueError(
                    f"`{name}` must hold values in [-1, 1]. Received: values "
                    f"in [{low:g}, {high:g}]"
                )
        return images


def _is_tf_dataset(x) -> bool:
    """Whether `x` is a `tf.data.Dataset` (without importing TensorFlow)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.data.Dataset)


def _scaled_value_and_grad(optimizer, loss_fn, variables):
    """Gradients of the loss scaled for replicas and for float16 loss scaling.

    Under `tf.distribute` the optimizer sums the replicas' gradients, so each
    replica's mean loss is divided by the number of replicas (global-batch
    mean); under mixed_float16 the optimizer's `scale_loss` multiplies it by
    its static `loss_scale_factor` and `apply` divides the gradients back.
    The returned loss is the unscaled one.
    """
    replicas = backend.num_replicas()

    def scaled_loss_fn():
        loss, aux = loss_fn()
        scaled = loss if replicas == 1 else loss * (1.0 / replicas)
        return optimizer.scale_loss(scaled), {**aux, "_loss": loss}

    _, aux, gradients = backend.value_and_grad(scaled_loss_fn, variables)
    loss = aux.pop("_loss")
    return loss, aux, gradients


def _zero_if_not_finite(loss, gradients):
    """Keeps a non-finite loss or gradient (float16 overflow) out of the weights.

    One reduction per gradient: a NaN or an infinity anywhere makes the sum
    of the loss and every gradient's sum non-finite (a float32 sum of finite
    values that overflows, |sum| > 3.4e38, counts as non-finite too and skips
    the step).
    """
    total = ops.cast(loss, "float32")
    for gradient in gradients:
        total = total + ops.sum(ops.cast(gradient, "float32"))
    return backend.where_finite(ops.isfinite(total), gradients)


def _check_generator(generator, latent_dim, owner: str):
    """Validates the generator; returns `(latent_dim, image_shape)`."""
    input_shape = _input_shape(generator)
    if input_shape is None:
        if latent_dim is None:
            raise ValueError(
                f"{owner} cannot infer `latent_dim` from an unbuilt generator: "
                "pass `latent_dim`. Received: latent_dim=None"
            )
        input_shape = (None, latent_dim)
    if len(input_shape) != 2:
        raise ValueError(
            "`generator` must map latents of shape (N, latent_dim) to images. "
            f"Received: a generator whose input shape is {input_shape}"
        )
    if latent_dim is None:
        latent_dim = input_shape[1]
    if latent_dim is None or int(latent_dim) < 1:
        raise ValueError(
            f"`latent_dim` must be a positive int. Received: latent_dim={latent_dim}"
        )
    if input_shape[1] is not None and int(input_shape[1]) != int(latent_dim):
        raise ValueError(
            f"`latent_dim` does not match the generator: its input has shape "
            f"{input_shape}. Received: latent_dim={latent_dim}"
        )
    latent_dim = int(latent_dim)
    images = _symbolic_call(generator, (None, latent_dim), "generator")
    if isinstance(images, (list, tuple)) or len(images.shape) != 4:
        raise ValueError(
            "`generator` must return one batch of images (N, H, W, C). "
            f"Received: generator output {describe_outputs(images)}"
        )
    return latent_dim, tuple(int(d) for d in images.shape[1:])


def _input_shape(model):
    inputs = getattr(model, "inputs", None)
    try:
        if inputs:
            return tuple(inputs[0].shape)
    except (AttributeError, ValueError):
        pass
    return None


def _symbolic_call(model, shape, name: str):
    try:
        return model.compute_output_spec(keras.KerasTensor(shape, "float32"))
    except Exception as error:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"Calling the `{name}` on inputs of shape {shape} failed: {error}"
        ) from error


def check_one_score_per_image(model, role: str) -> None:
    """Raises a `ValueError` unless the discriminator gives one value per image.

    Args:
        model: the model (`BaseGAN`) whose discriminator is checked.
        role: str. What the value is, for the message (`"logit"`, `"score"`).
    """
    outputs = model.discriminator_output_spec()
    if isinstance(outputs, (list, tuple)) or tuple(outputs.shape[1:]) not in (
        (),
        (1,),
    ):
        raise ValueError(
            f"{type(model).__name__}'s `discriminator` must return one {role} "
            "per image, of shape (N, 1) or (N,). Received: discriminator "
            f"output {describe_outputs(outputs)}"
        )


def describe_outputs(outputs) -> str:
    """Describes symbolic outputs for an error message: count and shapes."""
    if isinstance(outputs, (list, tuple)):
        shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        return f"a {type(outputs).__name__} of {len(outputs)} tensors ({shapes})"
    return f"a single tensor of shape {tuple(outputs.shape)}"


__all__ = ["FLOAT16_LOSS_SCALE", "BaseGAN"]

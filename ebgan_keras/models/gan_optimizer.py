"""One optimizer object that carries every optimizer of a GAN's training step."""

from __future__ import annotations

from collections.abc import Sequence

import keras


class _RouteByIdentity:
    """Sends each network's variables to its optimizer, the rest to the generator's.

    Routing by object identity, not by variable path: paths of two sub-models
    can collide (two layers named `dense` in different models).
    """

    def __init__(self, default_optimizer, routes: Sequence) -> None:
        self.default_optimizer = default_optimizer
        self._routes = [optimizer for optimizer, _ in routes]
        self._optimizer_of = {
            id(variable): optimizer
            for optimizer, variables in routes
            for variable in variables
        }

    def values(self) -> list:
        return list(self._routes)

    def __call__(self, variable):
        return self._optimizer_of.get(id(variable), self.default_optimizer)


class GANOptimizer(keras.optimizers.MultiOptimizer):
    """Holds the discriminator and generator optimizers as one `model.optimizer`.

    The Keras JAX trainer carries only `model.optimizer.variables` through its
    compiled step; an optimizer kept as a plain attribute is silently never
    updated there. This container exposes the variables of both optimizers,
    so every backend carries them. The training step calls
    `d_optimizer.apply` and `g_optimizer.apply` itself, at different times,
    and advances this container's `iterations` once per step. In a saved
    file it holds only its own variables: each optimizer's state is saved
    once, by the optimizer.

    A model with a third network (BiGAN's encoder) passes its optimizer and
    variables in `extra_routes`; that optimizer is then carried too.

    Args:
        d_optimizer: `keras.optimizers.Optimizer`. Updates the discriminator.
        g_optimizer: `keras.optimizers.Optimizer`. Updates the generator (and
            every variable no route names).
        d_variables: list of `keras.Variable`. The discriminator's trainable
            variables.
        extra_routes: sequence of `(optimizer, variables)` pairs. Further
            optimizers and the variables each updates. Defaults to `()`.
    """

    def __init__(
        self,
        d_optimizer,
        g_optimizer,
        d_variables: Sequence,
        extra_routes: Sequence = (),
    ) -> None:
        routes = [(d_optimizer, d_variables), *extra_routes]
        optimizers = [g_optimizer, *(optimizer for optimizer, _ in routes)]
        if len({id(optimizer) for optimizer in optimizers}) != len(optimizers):
            raise ValueError(
                "Each network needs its own optimizer object; the same object "
                "was passed for two of them."
            )
        scales = [optimizer.loss_scale_factor for optimizer in optimizers]
        super().__init__(
            _RouteByIdentity(g_optimizer, routes),
            name="gan_optimizer",
        )
        # MultiOptimizer resets its children's loss scale: keep the user's.
        for optimizer, scale in zip(optimizers, scales):
            optimizer.loss_scale_factor = scale
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    def save_own_variables(self, store):
        # Only this container's own variables (its step counter and the
        # unused learning rate). Each of the two optimizers saves its own
        # state as a child object, once: Keras's `MultiOptimizer` would also
        # write both optimizers' variables here, a second copy of every slot
        # next to the `d_optimizer` / `g_optimizer` entries of the model.
        for index, variable in enumerate(self._variables):
            store[str(index)] = variable.numpy()

    def load_own_variables(self, store):
        # Files written by release 0.1 hold, after these, the copy of both
        # optimizers' variables; the optimizers load theirs from their own
        # entries, so the copy is not read.
        if len(store.keys()) < len(self._variables):
            raise ValueError(
                f"The saved state of {self.name!r} holds {len(store.keys())} "
                f"variables; it needs its own {len(self._variables)} (step "
                "counter and learning rate). Received: a file of another "
                "optimizer or model"
            )
        for index, variable in enumerate(self._variables):
            variable.assign(store[str(index)])

    def apply(self, grads, trainable_variables=None):
        raise RuntimeError(
            "GANOptimizer only carries state; the training step applies "
            "`d_optimizer`, `g_optimizer` (and any other) separately."
        )

    def get_config(self) -> dict:
        raise NotImplementedError(
            "GANOptimizer is not serialized; the model saves `d_optimizer` and "
            "`g_optimizer` in its compile config."
        )

"""SB3 callbacks for DVP: evaluation against ground truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from dvp_rl.references.ground_truth import GroundTruth, ValueErrors, value_errors

#: ``values(model, states (N, nx)) -> V (N,)``: a model's cost-to-go estimate at states
Values = Callable[[Any, np.ndarray], np.ndarray]


class GroundTruthEvalCallback(BaseCallback):
    """Every ``eval_freq`` iterations, compare the model's value with ground truth.

    Records ``eval/value_mse``, ``eval/value_rel_mse`` and ``eval/gradient_rel_error``
    (see :class:`dvp_rl.references.ground_truth.ValueErrors`) in the model's logger, and keeps them in
    ``history`` as ``(iteration, num_timesteps, ValueErrors)``. Works with any model that has
    ``value_derivatives(states) -> (V, Vx, Vxx)``, or with any SB3 model given ``values`` (e.g. a
    critic), whose errors then have no gradient part (``gradient_rel_error`` NaN). A model whose
    ``num_timesteps`` has not changed since the last evaluation is not evaluated again. Subclasses
    report elsewhere by overriding :meth:`_record`.

    :param truth: the reference (:func:`dvp_rl.references.ground_truth.ground_truth`)
    :param eval_freq: evaluate at every ``eval_freq``-th occasion (DVP calls ``on_step`` once per iteration)
    :param values: ``values(model, states (N, nx)) -> V (N,)``, the estimate to compare
        (``None``: the model's ``value_derivatives``, gradients compared too)
    :param at_training_start: evaluate the untrained model too
    :param at_rollout_start: the occasions are SB3's ``on_rollout_start`` (an on-policy algorithm:
        right after each update) instead of ``on_step``
    :raises TypeError: at ``init_callback``, for a model without ``value_derivatives`` and no ``values``
    """

    def __init__(
        self,
        truth: GroundTruth,
        eval_freq: int = 1,
        verbose: int = 0,
        values: Values | None = None,
        at_training_start: bool = False,
        at_rollout_start: bool = False,
    ) -> None:
        super().__init__(verbose)
        if int(eval_freq) < 1:
            raise ValueError(f"eval_freq must be >= 1, got {eval_freq}")
        self.truth = truth
        self.eval_freq = int(eval_freq)
        self.values = values
        self.at_training_start = bool(at_training_start)
        self.at_rollout_start = bool(at_rollout_start)
        self.history: list[tuple[int, int, ValueErrors]] = []
        self._occasions = 0

    def estimate(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's ``V`` (N,) and ``Vx`` (N, nx) (``None`` with ``values``) at the reference states."""
        if self.values is not None:
            return np.asarray(self.values(self.model, self.truth.states)), None
        V, Vx, _ = self.model.value_derivatives(self.truth.states)
        return V, Vx

    def evaluate(self) -> ValueErrors:
        """Compare now, append to ``history`` and :meth:`_record` the errors."""
        errors = value_errors(self.truth, *self.estimate())
        self.history.append((int(getattr(self.model, "iteration", self.n_calls)), self.num_timesteps, errors))
        self._record(errors)
        return errors

    def _record(self, errors: ValueErrors) -> None:
        """Report one evaluation: ``eval/*`` in the model's logger, a line on stdout when ``verbose``."""
        self.logger.record("eval/value_mse", errors.value_mse)
        self.logger.record("eval/value_rel_mse", errors.value_rel_mse)
        self.logger.record("eval/gradient_rel_error", errors.gradient_rel_error)
        if self.verbose:
            print(f"iteration {self.history[-1][0]}: value rel. MSE {errors.value_rel_mse:.3e}, "
                  f"gradient rel. error {errors.gradient_rel_error:.3e}")

    def is_new(self) -> bool:
        """Whether the model changed since the last evaluation (its ``num_timesteps``), or none was made."""
        return not self.history or self.history[-1][1] != self.num_timesteps

    def _occasion(self) -> None:
        self._occasions += 1
        if self._occasions % self.eval_freq == 0 and self.is_new():
            self.evaluate()

    def _on_training_start(self) -> None:
        if self.at_training_start and self.is_new():
            self.evaluate()

    def _on_rollout_start(self) -> None:
        if self.at_rollout_start:
            self._occasion()

    def _on_step(self) -> bool:
        if not self.at_rollout_start:
            self._occasion()
        return True

    def _on_training_end(self) -> None:
        # make sure the final state is recorded even when eval_freq does not divide the run
        if self.is_new():
            self.evaluate()
            self.logger.dump(self.num_timesteps)

    def _init_callback(self) -> None:
        if self.values is None and not hasattr(self.model, "value_derivatives"):
            raise TypeError(f"{type(self.model).__name__} has no value_derivatives(states); give GroundTruthEvalCallback values=")

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"GroundTruthEvalCallback(n_states={len(self.truth.states)}, eval_freq={self.eval_freq})"


__all__: list[Any] = ["GroundTruthEvalCallback", "Values"]

"""SB3 callbacks for DVP: evaluation against ground truth."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from dvp_rl.references.ground_truth import GroundTruth, ValueErrors, value_errors


class GroundTruthEvalCallback(BaseCallback):
    """Every ``eval_freq`` iterations, compare the agent's value with ground truth.

    Records ``eval/value_mse``, ``eval/value_rel_mse`` and ``eval/gradient_rel_error``
    (see :class:`dvp_rl.references.ground_truth.ValueErrors`), and keeps them in ``history`` as
    ``(iteration, num_timesteps, ValueErrors)``. Works with any model that has
    ``value_derivatives(states) -> (V, Vx, Vxx)``.

    :param truth: the reference (:func:`dvp_rl.references.ground_truth.ground_truth`)
    :param eval_freq: evaluate every ``eval_freq`` calls (DVP calls once per iteration)
    """

    def __init__(self, truth: GroundTruth, eval_freq: int = 1, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.truth = truth
        self.eval_freq = int(eval_freq)
        self.history: list[tuple[int, int, ValueErrors]] = []

    def evaluate(self) -> ValueErrors:
        V, Vx, _ = self.model.value_derivatives(self.truth.states)
        errors = value_errors(self.truth, V, Vx)
        self.logger.record("eval/value_mse", errors.value_mse)
        self.logger.record("eval/value_rel_mse", errors.value_rel_mse)
        self.logger.record("eval/gradient_rel_error", errors.gradient_rel_error)
        self.history.append((int(getattr(self.model, "iteration", self.n_calls)), self.num_timesteps, errors))
        if self.verbose:
            print(f"iteration {self.history[-1][0]}: value rel. MSE {errors.value_rel_mse:.3e}, gradient rel. error {errors.gradient_rel_error:.3e}")
        return errors

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        # make sure the final state is recorded even when eval_freq does not divide the run
        if not self.history or self.history[-1][1] != self.num_timesteps:
            self.evaluate()
            self.logger.dump(self.num_timesteps)

    def _init_callback(self) -> None:
        if not hasattr(self.model, "value_derivatives"):
            raise TypeError(f"{type(self.model).__name__} has no value_derivatives(states); GroundTruthEvalCallback needs one")

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"GroundTruthEvalCallback(n_states={len(self.truth.states)}, eval_freq={self.eval_freq})"


__all__: list[Any] = ["GroundTruthEvalCallback"]

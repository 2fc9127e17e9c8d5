"""Figures of the DVP-vs-PPO benchmark, drawn headless.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so no
backend is selected, no window opens and nothing global changes; ``Figure.savefig``
renders them with Agg. Each function takes plain arrays:

* :func:`value_maps`: ground truth and each estimate over a plane of state space, and their
  absolute errors (the paper's Fig. 1 and Fig. 10);
* :func:`closed_loop_trajectories`: closed-loop states of each controller from the same
  starts (the paper's Fig. 11);
* :func:`value_error_curves`: value error against simulator transitions and against
  wall-clock, log scale;
* :func:`wallclock_curves`: success rate and mean return of episodes against training wall-clock.

:func:`render` draws a figure once into an RGB array, which :func:`save_png` writes and
tensorboard's ``add_image(..., dataformats="HWC")`` logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from PIL import Image

#: one colour per algorithm, in the order they are given
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


class CurvePoint(Protocol):
    """What :func:`wallclock_curves` reads of an evaluation (:class:`dvp_rl.compare.scorers.CurvePoint`)."""

    wallclock_s: float
    mean_return: float
    success_rate: float | None


class ErrorPoint(Protocol):
    """What :func:`value_error_curves` reads of an evaluation (:class:`dvp_rl.compare.scorers.EvalRecord`)."""

    transitions: int
    wallclock_s: float
    value_rel_mse: float


def render(figure: Figure, dpi: float = 110.0) -> np.ndarray:
    """Draw ``figure`` with Agg; returns its pixels, (H, W, 3) ``uint8``."""
    figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, 3) ``uint8`` image as a PNG file."""
    Image.fromarray(image).save(path, format="PNG")


def value_maps(
    axes: tuple[np.ndarray, np.ndarray],
    labels: tuple[str, str],
    truth: np.ndarray,
    estimates: Mapping[str, np.ndarray],
    title: str = "",
) -> Figure:
    """Value maps over a plane and the absolute error of each estimate.

    :param axes: grid coordinates along the two plane axes, (G1,) and (G2,)
    :param labels: names of the two axes
    :param truth: ground-truth values, (G1, G2) (NaN where no reference converged)
    :param estimates: name -> estimated values (G1, G2)
    :return: top row: ground truth and each estimate on one colour scale (that of the
        ground truth); bottom row: ``|estimate - truth|`` on one log scale, and a scatter of
        estimate against truth
    """
    n = len(estimates)
    figure = Figure(figsize=(4.2 * (n + 1), 7.6), layout="constrained")
    grid = figure.subplots(2, n + 1, squeeze=False)
    vmin, vmax = float(np.nanmin(truth)), float(np.nanmax(truth))
    panels = {"ground truth": truth, **estimates}
    for ax, (name, values) in zip(grid[0], panels.items()):
        mesh = ax.pcolormesh(axes[0], axes[1], np.asarray(values).T, shading="auto", vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set(title=f"V: {name}", xlabel=labels[0], ylabel=labels[1])
    figure.colorbar(mesh, ax=list(grid[0]), label="cost-to-go")
    errors = {name: np.abs(np.asarray(values) - truth) for name, values in estimates.items()}
    positive = np.concatenate([e[np.isfinite(e) & (e > 0)] for e in errors.values()])
    low = float(positive.min()) if positive.size else 1e-12
    norm = LogNorm(vmin=low, vmax=max(float(positive.max()) if positive.size else 1.0, 10.0 * low))
    for ax, (name, error) in zip(grid[1], errors.items()):
        mesh = ax.pcolormesh(axes[0], axes[1], np.maximum(error, norm.vmin).T, shading="auto", norm=norm, cmap="magma")
        ax.set(title=f"|V - V*|: {name} (MSE {np.nanmean(error**2):.2e})", xlabel=labels[0], ylabel=labels[1])
    figure.colorbar(mesh, ax=list(grid[1][:n]), label="absolute error")
    scatter = grid[1][n]
    for color, (name, values) in zip(COLORS, estimates.items()):
        scatter.plot(truth.reshape(-1), np.asarray(values).reshape(-1), ".", color=color, label=name, alpha=0.7)
    scatter.plot([vmin, vmax], [vmin, vmax], "k--", lw=1, label="V = V*")
    scatter.set(title="estimate against ground truth", xlabel="V* (ground truth)", ylabel="V (estimate)")
    scatter.legend()
    if title:
        figure.suptitle(title)
    return figure


def closed_loop_trajectories(
    rollouts: Mapping[str, Any],
    dt: float,
    state_labels: Sequence[str],
    plane_dims: tuple[int, int],
    title: str = "",
) -> Figure:
    """Closed-loop trajectories of each controller from the same start states.

    :param rollouts: name -> a :class:`dvp_rl.control.rollout.Rollout` (``states`` (N, T + 1, nx)), same starts for all
    :param dt: time step (s) of the env
    :param state_labels: names of the state coordinates, (nx,)
    :param plane_dims: the two coordinates of the phase plot
    :return: left: every start's path in the plane (start: circle); right: each coordinate
        against time for the first start
    """
    first = next(iter(rollouts.values())).states
    nx = first.shape[2]
    time = dt * np.arange(first.shape[1])
    figure = Figure(figsize=(12, max(2.2 * nx, 5.0)), layout="constrained")
    spec = figure.add_gridspec(nx, 2)
    phase = figure.add_subplot(spec[:, 0])
    lines = [figure.add_subplot(spec[i, 1]) for i in range(nx)]
    i, j = plane_dims
    for k, (color, (name, result)) in enumerate(zip(COLORS, rollouts.items())):
        style = "-" if k == 0 else "--"
        states = np.asarray(result.states)
        for n, path in enumerate(states):
            phase.plot(path[:, i], path[:, j], style, color=color, lw=1.3, label=name if n == 0 else None)
        phase.plot(states[:, 0, i], states[:, 0, j], "o", color="k", ms=4)
        for d, ax in enumerate(lines):
            ax.plot(time, states[0, :, d], style, color=color, label=name)
    phase.plot([0], [0], "k*", ms=10, label="goal")
    phase.set(xlabel=state_labels[i], ylabel=state_labels[j], title="closed loop from the same starts")
    phase.legend()
    for d, ax in enumerate(lines):
        ax.set_ylabel(state_labels[d])
        ax.axhline(0.0, color="0.7", lw=0.8)
    lines[0].set_title("first start")
    lines[0].legend()
    lines[-1].set_xlabel("time (s)")
    if title:
        figure.suptitle(title)
    return figure


def value_error_curves(histories: Mapping[str, Sequence[Sequence[ErrorPoint]]], title: str = "") -> Figure:
    """Value relative MSE against simulator transitions (log-log) and training wall-clock (log y).

    :param histories: name -> one sequence of evaluations per seed (each point has
        ``transitions``, ``wallclock_s`` and ``value_rel_mse``); points at 0 transitions are
        left out of the log axis
    """
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    by_transitions, by_time = figure.subplots(1, 2)
    for color, (name, seeds) in zip(COLORS, histories.items()):
        for s, history in enumerate(seeds):
            label = name if s == 0 else None
            steps = np.array([p.transitions for p in history], dtype=float)
            seconds = np.array([p.wallclock_s for p in history])
            errors = np.array([p.value_rel_mse for p in history])
            keep = steps > 0
            by_transitions.plot(steps[keep], errors[keep], "o-", color=color, ms=3, label=label)
            by_time.plot(seconds, errors, "o-", color=color, ms=3, label=label)
    by_transitions.set(xscale="log", yscale="log", xlabel="simulator transitions", ylabel="value relative MSE",
                       title="value error against transitions")  # fmt: skip
    by_time.set(yscale="log", xlabel="training wall-clock (s)", ylabel="value relative MSE", title="value error against wall-clock")
    for ax in (by_transitions, by_time):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    return figure


def wallclock_curves(curves: Mapping[str, Sequence[CurvePoint]], title: str = "") -> Figure:
    """Success rate (left; only where some evaluation reports success) and mean return (right) of the
    evaluations during training, against the training wall-clock.

    :param curves: name -> its evaluations in order (each point has ``wallclock_s``, ``mean_return`` and
        ``success_rate``, ``None`` where the env reports no success); an agent of one evaluation (no
        training: e.g. the controller without a learned value) is drawn as a dotted level across
    """
    with_success = any(p.success_rate is not None for points in curves.values() for p in points)
    figure = Figure(figsize=(12 if with_success else 6.5, 4.5), layout="constrained")
    axes = figure.subplots(1, 2 if with_success else 1, squeeze=False)[0]
    panels = [("success_rate", "success rate")] * with_success + [("mean_return", "mean return")]
    end = max((p.wallclock_s for points in curves.values() for p in points), default=0.0) or 1.0
    for ax, (key, label) in zip(axes, panels):
        for color, (name, points) in zip(COLORS, curves.items()):
            seconds = np.array([p.wallclock_s for p in points])
            values = np.array([np.nan if getattr(p, key) is None else getattr(p, key) for p in points], dtype=float)
            if len(points) == 1:
                ax.plot([seconds[0], end], [values[0], values[0]], ":", color=color, label=f"{name} (no training)")
            else:
                ax.plot(seconds, values, "o-", color=color, ms=3, label=name)
        ax.set(xlabel="training wall-clock (s)", ylabel=label, title=f"{label} against training wall-clock")
        if key == "success_rate":
            ax.set_ylim(-0.05, 1.05)
        else:  # returns many decades apart (an untrained agent's and a controller's) on a symmetric log axis
            returns = np.abs([p.mean_return for points in curves.values() for p in points])
            returns = returns[returns > 0]
            if returns.size and returns.max() > 100 * returns.min():
                ax.set_yscale("symlog", linthresh=float(returns.min()))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


__all__ = ["closed_loop_trajectories", "render", "save_png", "value_error_curves", "value_maps", "wallclock_curves"]

"""Drawing a kinematic chain and its goal as an RGB array (``render_mode="rgb_array"`` of the arms)."""

from __future__ import annotations

from typing import Any

import numpy as np


class ChainRenderer:
    """A matplotlib figure (Agg canvas, no pyplot: no global state) of a kinematic chain in two orthogonal views.

    ``env`` provides ``width``, ``height``, ``sample_states(n, rng)``, ``joint_origins(x) -> (k, 3)`` (the
    chain's points, base first, end effector last), the goal as ``x[:3]`` and ``arm.name`` (the title).

    The axes are drawn once; each frame restores them and draws the arm, the goal and the path on
    top (blitting), a few milliseconds instead of a full redraw's ~70.
    """

    def __init__(self, env: Any) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = 80
        self.figure = Figure(figsize=(env.width / dpi, env.height / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        # the view: the box of the base, joints and goals over the start distribution
        states = env.sample_states(64, np.random.default_rng(0))
        points = np.vstack([env.joint_origins(x) for x in states] + [states[:, :3]])
        centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
        half = 0.5 * float(np.max(points.max(axis=0) - points.min(axis=0))) + 0.1
        self.views: list[tuple[Any, int, int, Any, Any, Any]] = []
        for k, (i, j, title) in enumerate(((0, 2, "side (x-z)"), (0, 1, "top (x-y)"))):
            ax = self.figure.add_subplot(1, 2, k + 1)
            ax.set_xlim(centre[i] - half, centre[i] + half)
            ax.set_ylim(centre[j] - half, centre[j] + half)
            ax.set_aspect("equal")
            ax.set_title(f"{env.arm.name} {title}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, linewidth=0.3)
            (path,) = ax.plot([], [], "-", color="tab:orange", linewidth=1.0, animated=True)
            (links,) = ax.plot([], [], "o-", color="tab:blue", linewidth=3.0, markersize=4, animated=True)
            (goal,) = ax.plot([], [], "*", color="tab:red", markersize=12, animated=True)
            self.views.append((ax, i, j, path, links, goal))
        self.figure.tight_layout()
        self.canvas.draw()  # the static part: animated artists are left out
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)

    def draw(self, joints: np.ndarray, goal: np.ndarray, path: np.ndarray) -> np.ndarray:
        """The frame, (height, width, 3) uint8, of the joint origins (k, 3), the goal (3,) and the path (m, 3)."""
        self.canvas.restore_region(self.background)
        for ax, i, j, line, links, marker in self.views:
            line.set_data(path[:, i], path[:, j])
            links.set_data(joints[:, i], joints[:, j])
            marker.set_data([goal[i]], [goal[j]])
            for artist in (line, links, marker):
                ax.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

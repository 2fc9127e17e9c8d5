"""A host probe: how late a sleeping process wakes while a controller is timed beside it.

A controller is judged by its slowest step, and on a shared machine the slowest steps can be the
host's: a virtual machine whose CPU is taken away for tens of milliseconds stalls every process on
it. :class:`HostProbe` runs a separate process that sleeps ``interval`` seconds in a loop and
records how much later than asked it woke; a step time that matches a late wake-up of the probe
is the host's stall, not the controller's work::

    with HostProbe() as probe:
        results = evaluate_episodes(agent, "Pendulum-v1", range(1000, 1100))
    print(results.max_step_ms, probe.report.max_late_ms, probe.report.late_wakeups)

The probe sleeps almost all the time (a few hundred wake-ups a second), so it takes next to
nothing from the process it watches. POSIX only (it polls its stdin with ``select``). Used by
``benchmarks/controller_variants.py --probe``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

#: a wake-up this much later than asked counts as a stall of the host (seconds)
LATE_THRESHOLD = 0.010


@dataclass(frozen=True)
class ProbeReport:
    """What the probe saw: ``wakeups`` in ``seconds``; ``late_wakeups`` later than ``threshold_ms``;
    ``max_late_ms``: the latest; ``late_ms``: every late one, in order (ms); ``late_woke_ns``: when
    each of them woke (``time.perf_counter_ns()`` of the probe: on Linux the system's monotonic
    clock, the one :func:`dvp_rl.control.rollout.run_episodes` stamps its steps with)."""

    seconds: float
    wakeups: int
    threshold_ms: float
    late_wakeups: int
    max_late_ms: float
    late_ms: tuple[float, ...]
    late_woke_ns: tuple[int, ...] = ()

    def stall_within(self, start_ns: int, duration_ns: int) -> float:
        """The longest stall (ms) that overlaps ``[start_ns, start_ns + duration_ns]``: a late wake-up
        ``d`` ms late at ``w`` stalled ``[w - d, w]``; 0 when none of the late ones overlaps."""
        end = start_ns + duration_ns
        overlapping = [late for late, woke in zip(self.late_ms, self.late_woke_ns) if woke >= start_ns and woke - late * 1e6 <= end]
        return max(overlapping, default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the list of late wake-ups)."""
        return {"probe_seconds": round(self.seconds, 1), "probe_late_wakeups": self.late_wakeups,
                "probe_threshold_ms": self.threshold_ms, "probe_max_late_ms": round(self.max_late_ms, 1)}  # fmt: skip


#: the probe process's program: self-contained (no import of this package: it starts in a fraction of a
#: second), it prints ``ready``, sleeps in a loop until a line (or end of file) arrives on its stdin,
#: then prints its counts as JSON
_PROBE_PROGRAM = """
import json, select, sys, time
interval, threshold = float(sys.argv[1]), float(sys.argv[2])
print("ready", flush=True)
started = time.perf_counter()
wakeups, late, woke, max_late = 0, [], [], 0.0
while not select.select([sys.stdin], [], [], 0)[0]:
    t = time.perf_counter_ns()
    time.sleep(interval)
    now = time.perf_counter_ns()
    delay = (now - t) / 1e9 - interval
    wakeups += 1
    max_late = max(max_late, delay)
    if delay > threshold:
        late.append(delay * 1e3)
        woke.append(now)
print(json.dumps([time.perf_counter() - started, wakeups, len(late), max_late * 1e3, late, woke]), flush=True)
"""


class HostProbe:
    """A context manager that runs the sleeping probe in its own process (see the module docstring).

    :param interval: seconds each sleep asks for (> 0)
    :param threshold: lateness (seconds) that counts as a stall (>= 0)
    :raises ValueError: an ``interval`` or ``threshold`` out of range
    :raises RuntimeError: the probe process did not start or did not report (its stderr is quoted)
    """

    def __init__(self, interval: float = 0.005, threshold: float = LATE_THRESHOLD) -> None:
        if not float(interval) > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        if not float(threshold) >= 0:
            raise ValueError(f"threshold must be >= 0 seconds, got {threshold}")
        self.interval, self.threshold = float(interval), float(threshold)
        self.report: ProbeReport | None = None
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> HostProbe:
        args = [sys.executable, "-c", _PROBE_PROGRAM, repr(self.interval), repr(self.threshold)]
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self._process.stdout.readline().strip() != "ready":  # the probe sleeps from here on
            self._process.kill()
            raise RuntimeError(f"the host probe did not start: {self._process.stderr.read().strip()}")
        return self

    @property
    def pid(self) -> int | None:
        """The probe process's id (``None`` before :meth:`__enter__`)."""
        return None if self._process is None else self._process.pid

    def __exit__(self, *exc_info: Any) -> None:
        assert self._process is not None
        try:
            out, err = self._process.communicate("stop\n", timeout=10.0 + 10 * self.interval)
        except subprocess.TimeoutExpired:
            self._process.kill()
            raise RuntimeError("the host probe did not report within 10 s") from None
        try:
            seconds, wakeups, n_late, max_late, late, woke = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"the host probe did not report (exit code {self._process.returncode}): {err.strip()}") from None
        self.report = ProbeReport(seconds, wakeups, self.threshold * 1e3, n_late, max_late, tuple(late), tuple(int(w) for w in woke))

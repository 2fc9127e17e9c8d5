"""The host probe (dvp_rl.compare.probe): it sees a stall of its own process, and reports nothing made up."""

import os
import signal
import time

import pytest

from dvp_rl.compare.probe import HostProbe


def test_the_probe_reports_a_stall_of_its_process():
    """The probe process is stopped (SIGSTOP) for 0.3 s: as when a host takes the CPU away, its
    next wake-up comes at least that late, and the report says so."""
    with HostProbe(interval=0.005, threshold=0.1) as probe:
        time.sleep(0.5)  # let it sleep a while
        stopped = time.perf_counter_ns()
        os.kill(probe.pid, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(probe.pid, signal.SIGCONT)
        resumed = time.perf_counter_ns()
        time.sleep(0.1)
    report = probe.report
    assert report is not None and report.wakeups > 10
    assert report.late_wakeups >= 1 and report.max_late_ms >= 250.0
    assert max(report.late_ms) == pytest.approx(report.max_late_ms)
    # the stall is placed where it happened, on the clock the steps are stamped with
    assert report.stall_within(stopped, resumed - stopped) == pytest.approx(report.max_late_ms)
    assert report.stall_within(stopped - 10**9, 10**8) < 250.0  # a window a second before it does not see it
    assert report.stall_within(resumed + 2 * 10**8, 10**7) < 250.0  # nor one after it
    assert report.as_dict()["probe_max_late_ms"] == round(report.max_late_ms, 1)


def test_the_probe_checks_its_settings():
    with pytest.raises(ValueError, match="interval must be > 0"):
        HostProbe(interval=0.0)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        HostProbe(threshold=-1.0)

"""The run's display: counts per kind of stage, and one line per busy worker, reused when
workers come and go (Ray may start a process per stage)."""

from collections import Counter

from mcbench.run.monitor import Monitor


def test_lines_are_reused_and_counts_kept_per_kind():
    monitor = Monitor(Counter({"endpoint": 3, "repair": 1}), enabled=False)
    monitor.started("ray-1", "cpu", "endpoint A")
    monitor.started("ray-2", "cpu", "endpoint B")
    monitor.epoch("ray-2", "endpoint B", 4, 10, 0.5)
    assert (monitor._lines[1].n, monitor._lines[1].total) == (5, 10)
    monitor.finished("endpoint", "ray-1")
    monitor.started("ray-3", "cpu", "repair")  # takes the line ray-1 freed
    assert len(monitor._lines) == 2 and monitor._owner == {"ray-2": 1, "ray-3": 0}
    monitor.finished("endpoint", "ray-2")
    monitor.finished("repair", "ray-3")
    monitor.started("ray-2", "cpu", "endpoint C")  # back on its own line
    assert monitor._owner == {"ray-2": 1}
    assert monitor.done == Counter({"endpoint": 2, "repair": 1})
    monitor.close()

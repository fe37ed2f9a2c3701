"""Stage locks: one holder per (stage, key), waiters reuse its result, dead holders are broken."""

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from mcbench.run.locks import (
    StageLock,
    StaleWatch,
    acquire_or_wait,
    break_lock,
    holder_alive_here,
    live_locks,
    lock_path,
    read_lock,
)

KEY = "ab" * 32


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def write_lock(path, **info):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"owner": "someone", "started": time.time(), **info}))


def wait_for(condition, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_lock_path(tmp_path):
    assert lock_path(tmp_path, "endpoint", KEY) == tmp_path / "locks" / "endpoint" / f"{KEY}.lock"


def test_one_holder_at_a_time(tmp_path):
    a = StageLock(tmp_path, "endpoint", KEY, label="train", worker="w0")
    b = StageLock(tmp_path, "endpoint", KEY)
    assert a.try_acquire()
    try:
        info = read_lock(a.path)
        assert info["host"] == socket.gethostname() and info["pid"] == os.getpid()
        assert (info["stage"], info["key"], info["label"], info["worker"]) == (
            "endpoint",
            KEY,
            "train",
            "w0",
        )
        assert not b.try_acquire()
        b.release()
        assert read_lock(a.path) == info
        with pytest.raises(RuntimeError):
            a.try_acquire()
    finally:
        a.release()
    assert not a.path.exists()
    a.release()
    assert b.try_acquire()
    b.release()
    assert not b.path.exists()


def test_release_leaves_a_lock_taken_over_by_another(tmp_path):
    a = StageLock(tmp_path, "endpoint", KEY)
    b = StageLock(tmp_path, "endpoint", KEY)
    assert a.try_acquire()
    assert break_lock(a.path)
    assert b.try_acquire()
    owner = read_lock(b.path)["owner"]
    a.release()
    assert read_lock(b.path)["owner"] == owner
    b.release()
    assert not b.path.exists()


def test_other_keys_and_stages_do_not_conflict(tmp_path):
    locks = [
        StageLock(tmp_path, "endpoint", KEY),
        StageLock(tmp_path, "endpoint", "cd" * 32),
        StageLock(tmp_path, "curve", KEY),
    ]
    assert all(lock.try_acquire() for lock in locks)
    for lock in locks:
        lock.release()


def test_heartbeat_moves_the_mtime_and_notices_a_lost_lock(tmp_path):
    lock = StageLock(tmp_path, "endpoint", KEY, heartbeat_s=0.05, stale_after_s=1.0)
    assert lock.try_acquire()
    try:
        first = lock.path.stat().st_mtime_ns
        assert wait_for(lambda: lock.path.stat().st_mtime_ns != first)
        assert not lock.lost
        lock.path.unlink()
        assert wait_for(lambda: lock.lost)
    finally:
        lock.release()


def test_heartbeat_notices_a_lock_taken_over(tmp_path):
    lock = StageLock(tmp_path, "endpoint", KEY, heartbeat_s=0.05, stale_after_s=1.0)
    assert lock.try_acquire()
    try:
        write_lock(lock.path, owner="usurper")
        assert wait_for(lambda: lock.lost)
    finally:
        lock.release()
    assert read_lock(lock.path)["owner"] == "usurper"


def test_env_overrides_defaults_but_not_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("MCBENCH_LOCK_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("MCBENCH_LOCK_STALE_S", "7")
    lock = StageLock(tmp_path, "endpoint", KEY)
    assert (lock.heartbeat_s, lock.stale_after_s) == (0.5, 7.0)
    lock = StageLock(tmp_path, "endpoint", KEY, heartbeat_s=1.0, stale_after_s=3.0)
    assert (lock.heartbeat_s, lock.stale_after_s) == (1.0, 3.0)
    monkeypatch.delenv("MCBENCH_LOCK_HEARTBEAT_S")
    monkeypatch.delenv("MCBENCH_LOCK_STALE_S")
    lock = StageLock(tmp_path, "endpoint", KEY)
    assert (lock.heartbeat_s, lock.stale_after_s) == (5.0, 60.0)
    with pytest.raises(ValueError):
        StageLock(tmp_path, "endpoint", KEY, heartbeat_s=5.0, stale_after_s=5.0)


def test_a_holder_that_died_is_broken_at_once(tmp_path):
    code = (
        "import os, sys\n"
        "from mcbench.run.locks import StageLock\n"
        "assert StageLock(sys.argv[1], 'endpoint', sys.argv[2]).try_acquire()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path), KEY], check=True)
    path = lock_path(tmp_path, "endpoint", KEY)
    dead = read_lock(path)
    assert holder_alive_here(dead) is False
    assert StaleWatch(60.0).is_stale(path)

    lock = StageLock(tmp_path, "endpoint", KEY)
    start = time.monotonic()
    assert acquire_or_wait(lock, lambda: False, poll_s=0.05)
    try:
        assert time.monotonic() - start < 1.0
        assert read_lock(path)["owner"] != dead["owner"]
        assert read_lock(path)["pid"] == os.getpid()
    finally:
        lock.release()


def test_holder_alive_here():
    here = socket.gethostname()
    assert holder_alive_here({"host": here, "pid": os.getpid()}) is True
    assert holder_alive_here({"host": here, "pid": dead_pid()}) is False
    assert holder_alive_here({"host": "elsewhere", "pid": os.getpid()}) is None
    assert holder_alive_here({"host": here}) is None
    assert holder_alive_here({}) is None


def test_a_lock_from_another_host_is_stale_only_once_its_mtime_stops(tmp_path):
    path = lock_path(tmp_path, "endpoint", KEY)
    write_lock(path, host="elsewhere", pid=os.getpid())
    watch = StaleWatch(0.3)
    assert not watch.is_stale(path)
    time.sleep(0.1)
    assert not watch.is_stale(path)
    time.sleep(0.25)
    assert watch.is_stale(path)


def test_a_lock_from_another_host_with_a_heartbeat_is_never_stale(tmp_path):
    path = lock_path(tmp_path, "endpoint", KEY)
    write_lock(path, host="elsewhere", pid=1)
    stop = threading.Event()

    def heartbeat():
        tick = path.stat().st_mtime_ns
        while not stop.wait(0.05):
            tick += 1_000_000
            os.utime(path, ns=(tick, tick))

    thread = threading.Thread(target=heartbeat)
    thread.start()
    try:
        watch = StaleWatch(0.3)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert not watch.is_stale(path)
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join()


def test_an_unparseable_lock_is_judged_by_its_mtime_only(tmp_path):
    path = lock_path(tmp_path, "endpoint", KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    watch = StaleWatch(0.2)
    assert not watch.is_stale(path)
    time.sleep(0.25)
    assert watch.is_stale(path)


def test_a_missing_lock_is_not_stale(tmp_path):
    assert not StaleWatch(0.0).is_stale(lock_path(tmp_path, "endpoint", KEY))


def test_acquire_or_wait_when_already_done(tmp_path):
    lock = StageLock(tmp_path, "endpoint", KEY)
    assert not acquire_or_wait(lock, lambda: True)
    assert not lock.path.exists()
    assert lock.try_acquire()
    lock.release()


def test_acquire_or_wait_rechecks_done_after_acquiring(tmp_path):
    answers = iter([False, True])
    lock = StageLock(tmp_path, "endpoint", KEY)
    assert not acquire_or_wait(lock, lambda: next(answers))
    assert not lock.path.exists()


def test_acquire_or_wait_reuses_what_the_holder_computed(tmp_path):
    result = tmp_path / "result"
    holder = StageLock(tmp_path, "endpoint", KEY, label="holder", heartbeat_s=0.05)
    assert holder.try_acquire()
    owner = read_lock(holder.path)["owner"]

    def finish():
        time.sleep(0.3)
        result.write_text("done")
        holder.release()

    thread = threading.Thread(target=finish)
    thread.start()
    waits, checks = [], []

    def done():
        checks.append(result.exists())
        return checks[-1]

    waiter = StageLock(tmp_path, "endpoint", KEY, heartbeat_s=0.05, stale_after_s=5.0)
    try:
        assert not acquire_or_wait(waiter, done, poll_s=0.02, on_wait=waits.append)
    finally:
        thread.join()
    assert checks[-1] is True and checks.count(True) == 1 and len(checks) > 2
    assert [w["owner"] for w in waits] == [owner]
    assert waits[0]["label"] == "holder"
    assert not waiter.path.exists()


def compete(root, key, counter, result, barrier, answers):
    """One of several processes that all want the same stage."""
    lock = StageLock(root, "endpoint", key, heartbeat_s=0.05, stale_after_s=5.0)
    barrier.wait(timeout=30)
    got = acquire_or_wait(lock, result.exists, poll_s=0.02)
    if got:
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.2)
        tmp = result.with_name(f".{result.name}.{os.getpid()}.tmp")
        tmp.write_text("value")
        os.replace(tmp, result)
        lock.release()
    answers.put(got)


def test_many_processes_compute_a_stage_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    counter, result = tmp_path / "counter", tmp_path / "result"
    barrier, answers = ctx.Barrier(8), ctx.Queue()
    procs = [
        ctx.Process(target=compete, args=(tmp_path, KEY, counter, result, barrier, answers))
        for _ in range(8)
    ]
    for proc in procs:
        proc.start()
    try:
        got = sorted(answers.get(timeout=60) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=10)
    assert got == [False] * 7 + [True]
    assert [proc.exitcode for proc in procs] == [0] * 8
    assert len(counter.read_text().splitlines()) == 1
    assert result.read_text() == "value"
    assert not lock_path(tmp_path, "endpoint", KEY).exists()


def test_only_one_of_two_breakers_breaks_a_lock(tmp_path):
    path = lock_path(tmp_path, "endpoint", KEY)
    for _ in range(20):
        write_lock(path, host="elsewhere", pid=1)
        barrier = threading.Barrier(2)
        broke = []

        def breaker():
            barrier.wait()
            broke.append(break_lock(path))

        threads = [threading.Thread(target=breaker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(broke) == [False, True]
        assert not path.exists()
    assert list(path.parent.iterdir()) == []
    assert not break_lock(path)


def test_read_lock(tmp_path):
    path = lock_path(tmp_path, "endpoint", KEY)
    assert read_lock(path) is None
    path.parent.mkdir(parents=True)
    for junk in [b"", b"{not json", b"[1, 2]", b"\xff\xfe"]:
        path.write_bytes(junk)
        assert read_lock(path) == {}
    write_lock(path, host="h", pid=3)
    assert read_lock(path)["host"] == "h"


def test_live_locks(tmp_path):
    assert live_locks(tmp_path) == []
    dead = lock_path(tmp_path, "endpoint", "00" * 32)
    write_lock(dead, host=socket.gethostname(), pid=dead_pid(), started=time.time() - 10)
    quiet = lock_path(tmp_path, "curve", KEY)
    write_lock(quiet, host="elsewhere", pid=1, started=time.time() - 5)
    os.utime(quiet, (time.time() - 120, time.time() - 120))
    held = StageLock(tmp_path, "endpoint", KEY, label="train")
    assert held.try_acquire()
    try:
        locks = live_locks(tmp_path)
    finally:
        held.release()
    assert [entry["path"] for entry in locks] == [str(dead), str(quiet), str(held.path)]
    assert [entry["alive"] for entry in locks] == [False, False, True]
    assert locks[2]["label"] == "train" and locks[2]["stage"] == "endpoint"
    assert 9 < locks[0]["age_s"] < 20 and 0 <= locks[2]["age_s"] < 5
    assert live_locks(tmp_path, stale_after_s=600)[1]["alive"] is True

"""One process at a time per stage: lock files under ``RESULTS/locks`` that many processes share.

A results folder is shared by the worker processes of one run, by two ``mcbench run``
invocations, and by the nodes of a Ray cluster on a shared filesystem such as NFS. Each stage of
work is named by a (stage, key) pair; the first process to create

    RESULTS/locks/<stage>/<key>.lock

computes the stage, the others wait for its result and reuse it. Correctness never depends on
these locks: results are deterministic and written by atomic rename, so if two processes ever
compute the same stage (a lock judged stale too early, a race while breaking one) both write the
same bytes and the last rename wins. The locks only save the duplicate work.

A lock is created with ``O_CREAT | O_EXCL``, which is atomic on local filesystems and on NFSv3
and later. It holds JSON naming its holder (a random token, host, pid, stage, key, label,
worker, start time), and its holder's heartbeat thread touches it every ``heartbeat_s`` seconds.
A holder that dies without releasing leaves the file behind; waiters break it once it is stale:

* on the holder's own host, at once when the holder's pid is gone;
* on any host, when the file's (inode, mtime) has not changed for ``stale_after_s`` seconds.

The second rule is measured on the observer's own monotonic clock from the moment it first saw
that (inode, mtime): it only asks whether the mtime *moved*, never compares it with a clock, so
skew between nodes does not matter. Only ``live_locks`` (informational, for ``mcbench status``)
compares the file's times with this machine's wall clock.

``MCBENCH_LOCK_HEARTBEAT_S`` and ``MCBENCH_LOCK_STALE_S`` override the defaults (5 s and 60 s)
for every ``StageLock`` not given them explicitly; ``stale_after_s`` must exceed
``heartbeat_s`` or live holders would be judged stale.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOCKS_DIR = "locks"
DEFAULT_HEARTBEAT_S = 5.0
DEFAULT_STALE_S = 60.0


def lock_path(root: Path, stage: str, key: str) -> Path:
    return Path(root) / LOCKS_DIR / stage / f"{key}.lock"


def _seconds(given: float | None, env: str, default: float) -> float:
    if given is not None:
        return float(given)
    value = os.environ.get(env)
    return float(value) if value else default


def _open_lock(path: Path) -> tuple[dict | None, os.stat_result | None]:
    """The lock's JSON and the stat of the very file that was read. Opening the file (rather
    than a bare stat) makes an NFS client revalidate its cached attributes, so the mtime seen
    is the server's current one."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        return None, None
    try:
        info = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}, st
    return (info if isinstance(info, dict) else {}), st


def read_lock(path: Path) -> dict | None:
    """The lock's JSON, or None if there is no file; {} for a file that cannot be parsed
    (a holder that died between create and write, or one caught in between)."""
    return _open_lock(path)[0]


def holder_alive_here(info: dict) -> bool | None:
    """For a lock taken on this host: whether its pid is alive. None when the lock was taken
    on another host, or ``info`` lacks host or pid, since a pid means nothing elsewhere."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or type(pid) is not int or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StageLock:
    """The lock for one (stage, key) under ``root``. ``try_acquire`` takes it or fails at once;
    ``acquire_or_wait`` is the usual way in. ``lost`` turns True when the heartbeat finds the
    file gone or taken over (someone judged us stale): the work may then be done twice, which
    is harmless, and the caller may log it."""

    def __init__(
        self,
        root: Path,
        stage: str,
        key: str,
        *,
        label: str = "",
        worker: str = "",
        heartbeat_s: float | None = None,
        stale_after_s: float | None = None,
    ):
        self.root = Path(root)
        self.stage = stage
        self.key = key
        self.label = label
        self.worker = worker
        self.heartbeat_s = _seconds(heartbeat_s, "MCBENCH_LOCK_HEARTBEAT_S", DEFAULT_HEARTBEAT_S)
        self.stale_after_s = _seconds(stale_after_s, "MCBENCH_LOCK_STALE_S", DEFAULT_STALE_S)
        if not 0 < self.heartbeat_s < self.stale_after_s:
            raise ValueError(
                f"lock heartbeat ({self.heartbeat_s} s) must be positive and shorter than the "
                f"time after which a lock is stale ({self.stale_after_s} s)"
            )
        self.path = lock_path(self.root, stage, key)
        self.lost = False
        self._token: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Create the lock file atomically and start the heartbeat; False if it exists."""
        if self._token is not None:
            raise RuntimeError(f"{self.path} is already held by this StageLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        token = uuid.uuid4().hex
        info = {
            "owner": token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "stage": self.stage,
            "key": self.key,
            "label": self.label,
            "worker": self.worker,
            "started": time.time(),
        }
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(info, sort_keys=True).encode())
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        self._token = token
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat,
            args=(token, self._stop),
            name=f"mcbench-lock-{self.stage}-{self.key[:12]}",
            daemon=True,
        )
        self._thread.start()
        return True

    def _beat(self, token: str, stop: threading.Event) -> None:
        """Keep the mtime moving so waiters see we are alive; stop once the file is not ours.
        Other I/O errors (a hiccup of a network filesystem) are waited out: if they last,
        waiters break the lock and ``lost`` is set at the next beat that gets through."""
        while not stop.wait(self.heartbeat_s):
            try:
                info = read_lock(self.path)
                if info is None or info.get("owner") != token:
                    self.lost = True
                    return
                os.utime(self.path)
            except FileNotFoundError:
                self.lost = True
                return
            except OSError:
                continue

    def release(self) -> None:
        """Stop the heartbeat and remove the file if it is still ours: a lock broken as stale
        and taken by another process is left to that process. Safe to call more than once."""
        token, self._token = self._token, None
        if token is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        info = read_lock(self.path)
        if info is not None and info.get("owner") == token:
            self.path.unlink(missing_ok=True)


class StaleWatch:
    """Decides when a lock held by someone else is stale, from this observer's monotonic clock
    (robust to clock skew between nodes): stale if ``holder_alive_here(info)`` is False, or if
    the file's (st_ino, st_mtime_ns) has not changed for ``stale_after_s`` seconds of our own
    ``time.monotonic()`` since we first saw that value. A lock file that is {} (unparseable) is
    judged by the mtime rule only. The inode is part of the value so that a lock broken and
    taken again within one mtime tick still counts as new."""

    def __init__(self, stale_after_s: float):
        self.stale_after_s = stale_after_s
        self._seen: dict[Path, tuple[tuple[int, int], float]] = {}

    def is_stale(self, path: Path) -> bool:
        path = Path(path)
        info, st = _open_lock(path)
        if info is None:
            self._seen.pop(path, None)
            return False
        assert st is not None  # a lock that was read was stat-ed
        if info and holder_alive_here(info) is False:
            return True
        now = time.monotonic()
        value = (st.st_ino, st.st_mtime_ns)
        seen = self._seen.get(path)
        if seen is None or seen[0] != value:
            self._seen[path] = (value, now)
            return False
        return now - seen[1] >= self.stale_after_s


def break_lock(path: Path) -> bool:
    """Take a stale lock away: rename it to a unique name (atomic, so of two processes
    breaking it at once only one succeeds), then unlink that. True if we broke it.

    The rename cannot tell which file it moves: in a rare race a breaker that judged an old
    file stale moves away a lock that another breaker has just taken. Then two processes compute
    the stage, which is harmless (see the module docstring), and the robbed one's ``lost`` is
    set."""
    path = Path(path)
    moved = Path(f"{path}.stale.{uuid.uuid4().hex}")
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return False
    moved.unlink(missing_ok=True)
    return True


def acquire_or_wait(
    lock: StageLock,
    done: Callable[[], bool],
    *,
    poll_s: float = 0.2,
    on_wait: Callable[[dict | None], Any] | None = None,
) -> bool:
    """Take ``lock`` to compute a stage, or wait for whoever holds it to finish.

    True: the caller holds the lock, computes the stage, then calls ``lock.release()``.
    False: ``done()`` says the result exists; reuse it (the lock is not held). ``done()`` is
    checked again right after acquiring, since the holder may have finished between our check
    and our acquire. A stale lock is broken and acquiring retried at once; ``on_wait`` gets the
    holder's JSON the first time we wait on each holder, for a log line."""
    watch = StaleWatch(lock.stale_after_s)
    waited_on: object = object()
    while True:
        if done():
            return False
        if lock.try_acquire():
            if done():
                lock.release()
                return False
            return True
        if watch.is_stale(lock.path):
            break_lock(lock.path)
            continue
        info = read_lock(lock.path)
        if info is None:
            continue
        holder = info.get("owner")
        if holder != waited_on:
            waited_on = holder
            if on_wait is not None:
                on_wait(info)
        time.sleep(poll_s)


def live_locks(root: Path, stale_after_s: float = DEFAULT_STALE_S) -> list[dict]:
    """Every lock under ``root/locks`` as its JSON plus "path", "age_s" (now - started, wall
    clock) and "alive": ``holder_alive_here(info)`` when it is on this host, else whether the
    file's mtime is within ``stale_after_s`` of ``time.time()``. Sorted by started. For
    ``mcbench status``; it compares other hosts' times with ours, so it is only a guide."""
    now = time.time()
    locks = []
    for path in sorted((Path(root) / LOCKS_DIR).glob("*/*.lock")):
        info, st = _open_lock(path)
        if info is None:
            continue
        assert st is not None  # a lock that was read was stat-ed
        entry = dict(info)
        entry.setdefault("stage", path.parent.name)
        entry.setdefault("key", path.name.removesuffix(".lock"))
        started = entry.get("started")
        if not isinstance(started, (int, float)):
            started = entry["started"] = st.st_mtime
        alive = holder_alive_here(info)
        if alive is None:
            alive = now - st.st_mtime <= stale_after_s
        entry.update(path=str(path), age_s=now - started, alive=alive)
        locks.append(entry)
    return sorted(locks, key=lambda entry: entry["started"])

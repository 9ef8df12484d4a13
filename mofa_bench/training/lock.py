"""One trainer per run directory: an exclusive lock on ``<run_dir>/.lock``.

The lock is an advisory ``fcntl.flock`` on the file, which the operating system drops
when the holding process ends in any way (exit, exception, ``SIGKILL``), so a lock left
by a killed process is stale and taken over at once. The file records the holder's PID,
host and start time for the message a second trainer gets; it is removed on release.

Example:
    >>> with RunLock(run_dir):
    ...     train()
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from mofa_bench.errors import MofaBenchError

__all__ = ["LOCK_NAME", "RunDirectoryBusyError", "RunLock"]

logger = logging.getLogger(__name__)

#: Name of the lock file inside a run directory.
LOCK_NAME = ".lock"


class RunDirectoryBusyError(MofaBenchError):
    """Another live process is training in this run directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Exclusive lock of a run directory (a context manager; re-entrant use is an error).

    Args:
        run_dir: the run directory (created if missing).

    Raises:
        RunDirectoryBusyError: on :meth:`acquire`, when a live process holds the lock;
            the message names its PID, host and start time.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "RunLock":
        """Take the lock, or raise :class:`RunDirectoryBusyError` if a live process has it."""
        import fcntl

        if self._fd is not None:
            raise RuntimeError(f"{self.path}: already held by this process")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        previous = self._holder()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = self._holder()
                raise RunDirectoryBusyError(
                    f"run directory {self.run_dir} is in use by another training (pid {holder.get('pid', '?')} "
                    f"on {holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it to "
                    f"finish, or choose another --name / --out") from None
            try:  # the holder may have released (and unlinked) the file between open and flock
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        pid = previous.get("pid")
        if isinstance(pid, int) and pid != os.getpid():
            state = "no longer running" if previous.get("host") != socket.gethostname() or not _pid_alive(pid) \
                else "not holding it"
            logger.warning("%s: stale lock of pid %s (%s) taken over", self.path, pid, state)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock and remove the lock file (no-op when not held)."""
        import fcntl

        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:  # a trainer dropped without release(): the OS would drop it at exit anyway
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

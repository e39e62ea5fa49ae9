"""One job per run folder: the lock ``<run_dir>/.oceanbridge.lock``.

``oceanbridge launch`` holds an exclusive ``flock`` on that file for the whole
job, and ``preprod`` while it rewrites the member folders, so a second launch
of the same config (or a preprod under a running job) stops at once instead of
overwriting the restart, checkpoint and ensemble files of the first.  The
kernel drops a flock when its holder exits, however it dies (even SIGKILL), so
a lock is never stale.  The holder writes its pid, host, start time and
command into the file, for the message of the one refused; the file itself
stays (removing it would let two processes lock two different files).
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".oceanbridge.lock"


class RunFolderLocked(RuntimeError):
    """Another oceanbridge process holds the run folder; the message names it and what to do."""


@contextmanager
def run_folder_lock(run_dir: Path, command: str) -> Iterator[Path]:
    """Hold the lock of ``run_dir`` inside the ``with`` block; raise RunFolderLocked if it is taken."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the job (O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderLocked(locked_message(path, _read(fd))) from None
        _write(fd, command)
        yield path
    finally:
        os.close(fd)  # releases the flock


def lock_holder(run_dir: Path) -> str | None:
    """The refusal message if another process holds ``run_dir``'s lock now, else None (no lock taken)."""
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return locked_message(path, _read(fd))
    finally:
        os.close(fd)


def locked_message(path: Path, holder: dict[str, str]) -> str:
    who = ", ".join(f"{key} {holder[key]}" for key in ("pid", "host", "started") if key in holder)
    command = f" ({holder['command']})" if "command" in holder else ""
    return (f"run folder {path.parent} is in use by another oceanbridge process: {who or 'holder still starting'}"
            f"{command} holds the lock {path}. Wait for that job to end, or stop it (kill {holder.get('pid', 'PID')}"
            f" on {holder.get('host', 'its host')}), or give this config another [run] run_dir")


def _write(fd: int, command: str) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    text = f"pid: {os.getpid()}\nhost: {socket.gethostname()}\nstarted: {started}\ncommand: {command}\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _read(fd: int) -> dict[str, str]:
    text = os.pread(fd, 4096, 0).decode(errors="replace")
    pairs = (line.partition(": ") for line in text.splitlines())
    return {key: value for key, sep, value in pairs if sep}

"""The ``mpirun`` prefix every oceanbridge launch uses (tests, benchmarks, demo, deploy), and the wait for it.

``orte_abort_on_non_zero_status 0`` keeps Open MPI from killing the whole job
the moment one side dies, so the survivor reaches its timeout and says what
happened instead of vanishing with a bare 'exited on signal 9'.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

# Open MPI 4.1 stops a job (SIGTERM to mpirun, a rank's death under abort-on-failure, MPI_Abort) by signalling
# every process in steps odls_base_sigkill_timeout s apart: SIGTERM after one such wait, SIGKILL after a second
# (measured: a rank trapping SIGTERM got it 3 s after mpirun did with a timeout of 3 s, and mpirun ended ~6 s after,
# whenever its processes ended: it sleeps out both waits).  Its default, 1 s, kills a worker in the middle of its
# checkpoint: a deploy launch passes ``[run] stop_grace`` (deploy.mpmd).  Jobs with no checkpoint to write
# (tests of the bridge, benchmarks) keep the default, so that their aborts stay quick.
OPENMPI_STOP_GRACE = 1  # odls_base_sigkill_timeout's default


def mpirun_prefix(nprocs: int, *, cores: int | None = None, keep_going_on_failure: bool = False,
                  stop_grace: int | None = None) -> list[str]:
    """Open MPI's ``mpirun`` with the options this machine needs for ``nprocs`` processes.

    ``keep_going_on_failure`` suits an ocean that must outlive its worker
    (``ln_obr_required = .false.``); by default a death stops the whole job, so
    collectives of the host model can never wait on a dead rank.  ``stop_grace``
    (s) is the time between the steps of a stop (above).  Other MPIs
    know none of these options (deploy.mpmd gives them none)."""
    exe = shutil.which("mpirun") or "mpirun"
    cmd = [exe, "--bind-to", "none"]
    if stop_grace is not None:
        cmd += ["--mca", "odls_base_sigkill_timeout", str(stop_grace)]
    if nprocs > (cores or os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    if keep_going_on_failure:
        cmd += ["--mca", "orte_abort_on_non_zero_status", "0"]
    return cmd


def stop_grace_of(cmd: list[str]) -> int:
    """The ``odls_base_sigkill_timeout`` an mpirun command line gives (Open MPI's default when it gives none)."""
    for k in range(len(cmd) - 2):
        if cmd[k] == "--mca" and cmd[k + 1] == "odls_base_sigkill_timeout":
            return int(cmd[k + 2])
    return OPENMPI_STOP_GRACE


# --- the job's processes ------------------------------------------------------
@dataclass
class JobProcess:
    """One process mpirun started on this node, as read from /proc while it ran."""
    pid: int
    start: str  # start time (/proc/<pid>/stat): tells a reused pid apart
    rank: str | None = None  # OMPI_COMM_WORLD_RANK
    program: str = "?"
    folder: str = "?"
    ended: float | None = None  # s after the wait began when it was first seen ended

    def describe(self) -> str:
        who = f"world rank {self.rank}" if self.rank is not None else f"process {self.pid}"
        return f"{who} ({self.program}, in {self.folder})"

    def alive(self) -> bool:
        """Still running as the same process (not ended, not a zombie, pid not reused)."""
        stat = _read(f"/proc/{self.pid}/stat")
        return bool(stat) and _stat_field(stat, 19) == self.start and _stat_field(stat, 0) != "Z"


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().decode(errors="replace")
    except OSError:  # gone meanwhile, or not ours to read
        return ""


def _stat_field(stat: str, index: int) -> str:
    """Field ``index`` after the command name of /proc/<pid>/stat (0: state, 19: start time)."""
    return stat[stat.rindex(")") + 2:].split()[index]


def _program(pid: int) -> str:
    argv = _read(f"/proc/{pid}/cmdline").rstrip("\0").split("\0")
    text = shlex.join([Path(argv[0]).name, *argv[1:]]) if argv[0] else "?"
    return text if len(text) <= 80 else text[:79] + "…"


class JobProcesses:
    """mpirun's children, polled: who each one is (rank, program, folder) and when it ended."""

    def __init__(self, mpirun_pid: int):
        self.mpirun_pid = mpirun_pid
        self.t0 = time.monotonic()
        self.procs: dict[int, JobProcess] = {}
        self.readable = True  # False when mpirun's children cannot be listed (then all_ended says no)

    def poll(self) -> None:
        now = time.monotonic() - self.t0
        kids = self._children()
        for pid in kids - self.procs.keys():
            stat = _read(f"/proc/{pid}/stat")
            if stat:
                self.procs[pid] = JobProcess(pid, _stat_field(stat, 19))
        for proc in self.procs.values():
            if proc.ended is None and not (proc.pid in kids and proc.alive()):
                proc.ended = now
            elif proc.ended is None and proc.rank is None:
                self._identify(proc)  # until exec has given it the rank's environment

    def _children(self) -> set[int]:
        kids: set[int] = set()
        try:
            for task in Path(f"/proc/{self.mpirun_pid}/task").iterdir():
                kids.update(int(pid) for pid in _read(f"{task}/children").split())
            self.readable = True
        except OSError:
            self.readable = False
        return kids

    @staticmethod
    def _identify(proc: JobProcess) -> None:
        env = _read(f"/proc/{proc.pid}/environ").split("\0")
        proc.rank = next((v.split("=", 1)[1] for v in env if v.startswith("OMPI_COMM_WORLD_RANK=")), None)
        proc.program = _program(proc.pid)
        try:
            proc.folder = os.readlink(f"/proc/{proc.pid}/cwd")
        except OSError:
            pass

    def all_ended(self) -> bool:
        """Every process mpirun started has ended (False before the first one was seen: srun starts none here)."""
        return self.readable and bool(self.procs) and all(p.ended is not None for p in self.procs.values())

    def kill_alive(self) -> list[JobProcess]:
        """SIGKILL the processes still running (those of a killed mpirun would run on); return them."""
        return self.signal_alive(signal.SIGKILL)

    def signal_alive(self, signum: int) -> list[JobProcess]:
        """Send ``signum`` to the processes still running; return them."""
        left = [p for p in self.procs.values() if p.alive()]
        for proc in left:
            try:
                os.kill(proc.pid, signum)
            except OSError:
                pass
        return left

    def ends(self) -> str:
        """Which processes ended early and when (s after the wait began), e.g. 'world rank 2 (python w.py, in /run)
        ended at 1.2 s, 9.8 s before the last process; the others ended at 11.0 s'."""
        ended = sorted(((p.ended, p) for p in self.procs.values() if p.ended is not None), key=lambda tp: tp[0])
        if not ended:
            return "no process of the job was seen"
        last = ended[-1][0]
        early = [(t, p) for t, p in ended if last - t > EARLY]
        rest = [t for t, _ in ended if last - t <= EARLY]
        named = "; ".join(f"{p.describe()} ended at {t:.1f} s, {last - t:.1f} s before the last process"
                          for t, p in early)
        span = f"{rest[0]:.1f} s" if rest[0] == last else f"{rest[0]:.1f}-{last:.1f} s"
        others = f"the {'others' if early else f'{len(rest)} processes'} ended at {span}"
        return f"{named}; {others}" if early else others


EARLY = 1.0  # s before the last process: a process that ended earlier is named in the end note


# --- waiting for mpirun -------------------------------------------------------
# Open MPI 4.1's mpirun can outlive every process it started: after one of them
# was killed by a signal under ``orte_abort_on_non_zero_status 0`` (checked: SIGKILL
# one of two ranks, the other finalizes, mpirun waits forever), or when MPI_Abort
# meets a peer inside MPI_Finalize.  The job is over then; only mpirun hangs.
ORPHAN_GRACE = 10.0  # s that mpirun may outlive all its processes before it is stopped
STOP_MARGIN = 10.0  # s past mpirun's own stop sequence (2 x its stop grace) that a launcher waits after a stop request
POLL = 0.2  # s between looks at mpirun and its processes


class JobEnd(NamedTuple):
    status: int  # exit status for a shell: mpirun's, 1 when it had to be stopped, 128+signal after a stop request
    note: str  # '' or what happened, to print


class StopSignals:
    """The signals received while a job runs (see ``stop_signals``)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.handled = 0  # how many of them the wait has acted on


@contextmanager
def stop_signals(signums=(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)) -> Iterator[StopSignals]:
    """Record ``signums`` instead of dying of them (no KeyboardInterrupt), so that the launcher can stop its job
    and wait for it; the previous handlers come back afterwards.  Outside the main thread nothing is caught."""
    stop = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, lambda signum, _frame: stop.received.append(signum)) for s in signums}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def watch_mpirun(proc: subprocess.Popen, timeout: float | None = None,
                 stop: StopSignals | None = None) -> JobEnd:
    """Wait for an mpirun ``proc``, tracking its processes; stop it once it has outlived them all by ORPHAN_GRACE s.

    With ``stop``, the first signal received stops the job: SIGTERM to every process at once (the worker starts its
    checkpoint now, not one stop grace later) and to mpirun, which ends the job in its own steps; a second signal
    kills mpirun and every process at once.
    Raises ``subprocess.TimeoutExpired`` when the job itself runs past ``timeout``."""
    job = JobProcesses(proc.pid)
    t_end = None if timeout is None else time.monotonic() + timeout
    stop_by = orphan_since = None
    while proc.poll() is None:
        if t_end is not None and time.monotonic() > t_end:
            assert timeout is not None  # t_end is set only with a timeout
            _stop(proc, job)
            raise subprocess.TimeoutExpired(proc.args, timeout)
        if stop is not None and len(stop.received) > stop.handled:
            stop_by = _on_signal(proc, job, stop) or stop_by
        if stop_by is not None and time.monotonic() > stop_by:
            assert stop is not None  # stop_by is set only on a signal received through stop
            _kill(proc, job)
            return _stopped(stop, job, f"mpirun had not ended {_stop_wait(proc):g} s after it was told to stop: "
                                       "killed it")
        job.poll()
        if not job.all_ended() or _in_kill_timer(proc.pid):
            orphan_since = None
        elif orphan_since is None:
            orphan_since = time.monotonic()
        elif time.monotonic() - orphan_since > ORPHAN_GRACE:
            _kill(proc, job)
            note = (f"mpirun was still running {ORPHAN_GRACE:g} s after every process of the job had ended (an "
                    f"Open MPI 4.1 mpirun hang after a killed or aborted process); stopped it. {job.ends()}")
            return _stopped(stop, job, note) if stop and stop.received else JobEnd(1, f"oceanbridge: {note}\n")
        try:
            proc.wait(POLL)
        except subprocess.TimeoutExpired:
            pass
    job.poll()  # the ends of the last processes, reaped by mpirun as it ended
    return _stopped(stop, job, "") if stop and stop.received else JobEnd(_shell_status(proc.returncode), "")


def wait_mpirun(proc: subprocess.Popen, timeout: float | None = None) -> str:
    """``watch_mpirun`` without signal handling: returns '' or a note saying mpirun was stopped (its return code
    is then -9) and which processes ended when."""
    return watch_mpirun(proc, timeout).note


def _on_signal(proc: subprocess.Popen, job: JobProcesses, stop: StopSignals) -> float | None:
    """Act on the signals not yet handled; return the time by which mpirun must have ended, after the first."""
    name = signal.Signals(stop.received[-1]).name
    first = stop.handled == 0
    stop.handled = len(stop.received)
    if not first:
        log.warning("oceanbridge launch: %s received again; killing mpirun and every process of the job now", name)
        _kill(proc, job)
        return None
    wait = _stop_wait(proc)
    log.warning("oceanbridge launch: %s received; told the job to stop (the worker writes its checkpoint); waiting "
                "up to %g s for mpirun (pid %d) to end it (send the signal again to kill the job at once)",
                name, wait, proc.pid)
    job.poll()
    job.signal_alive(signal.SIGTERM)  # mpirun's own SIGTERM comes one stop grace late; the worker ignores a repeat
    proc.terminate()  # once: a second SIGTERM within 5 s makes Open MPI 4.1's mpirun leave its processes running
    return time.monotonic() + wait


def _stop_wait(proc: subprocess.Popen) -> float:
    """How long mpirun may take to end a job it was told to stop: its two steps, and a margin."""
    args = [str(a) for a in proc.args] if isinstance(proc.args, list) else []  # (launchers pass str arguments)
    return 2 * stop_grace_of(args) + STOP_MARGIN


def _stopped(stop: StopSignals, job: JobProcesses, note: str) -> JobEnd:
    """The end of a job stopped on request: 128+signal, as a shell reports a process killed by that signal."""
    left = job.kill_alive()  # left running by an mpirun that gave up early (measured: a second SIGTERM does it)
    parts = [note] if note else [f"its processes: {job.ends()}"]
    parts += [f"killed what mpirun left running: {', '.join(p.describe() for p in left)}"] if left else []
    signum = stop.received[0]
    return JobEnd(128 + signum, f"oceanbridge launch: the job was stopped on {signal.Signals(signum).name}; "
                                f"{'; '.join(parts)}\n")


def _kill(proc: subprocess.Popen, job: JobProcesses) -> None:
    """SIGKILL mpirun, then the processes it leaves (they would run on, reparented to PID 1)."""
    proc.kill()
    proc.wait()
    job.kill_alive()


def _stop(proc: subprocess.Popen, job: JobProcesses) -> None:
    """SIGTERM first, which mpirun forwards to its processes; SIGKILL (mpirun and its processes) if it does not end."""
    proc.terminate()
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        _kill(proc, job)


def _shell_status(returncode: int) -> int:
    """A Popen return code as a shell gives it: -N (killed by signal N) becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _in_kill_timer(pid: int) -> bool:
    """Whether Open MPI's mpirun is sleeping out odls_base_sigkill_timeout (its main thread in nanosleep): it then
    ends by itself, and forwards the last output of its processes, which a kill now would lose (measured)."""
    return _read(f"/proc/{pid}/comm").strip() in ("mpirun", "mpiexec", "orterun") and \
        "nanosleep" in _read(f"/proc/{pid}/wchan")


def run_mpirun(cmd: list[str], *, timeout: float | None = None, cwd=None, env=None) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd)`` with stdout+stderr captured as text, waiting with ``wait_mpirun``.

    The output goes through a temporary file, so a chatty job cannot block on a full pipe."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            note = wait_mpirun(proc, timeout)
        except subprocess.TimeoutExpired as exc:
            out.seek(0)
            exc.output = out.read()
            raise
        out.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read() + note)

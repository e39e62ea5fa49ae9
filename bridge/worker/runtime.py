"""The worker loop: receive from every member at the ocean's coupling steps, turn
each step into events for the handlers of the configured modes (``modes.py``:
pairs for the buffer, emulated states, ensemble records...), lose members,
checkpoint and finish; the ``Learner`` thread trains meanwhile.

Pairs.  The buffer holds ``(member index, θ, x_t, x_{t+Δ})`` where x_t is the
state the ocean actually continued from at step t (what it sent, or, on an
emulator step, what the worker sent back) and x_{t+Δ} is the next received
state.  With the emulator on, the worker asks the learner for the sample of
step t+Δ as soon as x_t is known, so it is ready before the ocean asks.
On OASIS the '<name>_emu' fields also travel at the initial step nit000-1
(OASIS couples every field at every period from t = 0): the worker puts the
state it has just received there, and the ocean discards it.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from bridge.errors import BridgeError
from bridge.worker.checkpoint import save_checkpoint
from bridge.worker.modes import (
    EmulatedWanted,
    InitialExchange,
    MemberStepped,
    StateArrived,
    mode_handlers,
)
from bridge.worker.process import Stopped
from bridge.worker.records import Counters
from bridge.worker.tunnel import Schedule

if TYPE_CHECKING:  # annotations only: the parts are built in cli.py
    from bridge.config.config import DeployConfig
    from bridge.worker.engine import Engine
    from bridge.worker.equilibrium import EquilibriumWatch
    from bridge.worker.learner import Learner
    from bridge.worker.settings import WorkerSettings
    from bridge.worker.tunnel import Tunnel
    from models.buffers import Buffer
    from models.train import Trainer

log = logging.getLogger(__name__)
STOP_JOIN_S = 5.0  # s the training thread may take to finish its step on a stop signal (within [run] stop_grace)


@dataclass(frozen=True)
class WorkerParts:
    """What ``cli.run_worker`` builds for the runtime, by name and type."""

    cfg: DeployConfig
    settings: WorkerSettings
    tunnel: Tunnel
    engine: Engine  # the trainer, this rank's tile and band, the posterior estimator
    buffer: Buffer  # of BufferedSample
    learner: Learner  # the training thread
    counters: Counters
    theta: dict[str, np.ndarray]  # member -> its parameters
    channels: tuple[str, ...]
    checkpoint: Path
    generator: Trainer | None = None  # the spinup mode's 'generate' surrogate
    watch: EquilibriumWatch | None = None  # the generate mode's equilibrium detector (bridge/worker/equilibrium.py)
    parts: dict[str, Any] = field(default_factory=dict)  # what the checkpoint holds beside the trainer, by name


class Runtime:
    def __init__(self, p: WorkerParts):
        self.cfg, self.settings, self.tunnel, self.engine = p.cfg, p.settings, p.tunnel, p.engine
        self.buffer, self.learner, self.counters, self.theta = p.buffer, p.learner, p.counters, p.theta
        self.channels, self.checkpoint, self.generator = p.channels, p.checkpoint, p.generator
        self.watch, self.parts = p.watch, p.parts
        self.schedule = Schedule.from_config(self.cfg)
        self.modes = set(self.cfg.worker.modes)
        self.members = self.cfg.components
        # per member: the state the ocean continued from (None: none valid yet), the emulated sample asked for
        # its next step (the step and the state it starts from; emulate)
        self.actual: dict[str, np.ndarray | None] = {m: None for m in self.members}
        self.pending: dict[str, tuple[int, np.ndarray]] = {}
        self.recv_s = 0.0
        self.lost: dict[str, dict] = {}  # member -> the step and the error it was lost at ([ocean] required = false)
        self.handlers = mode_handlers(self.modes, self)  # in the fixed order of modes.MODE_HANDLERS

    # -- the loop ------------------------------------------------------------------
    def run(self, progress=None) -> dict:
        t0 = time.perf_counter()
        self.counters.launches += 1
        self.learner.start()
        try:
            for kt in self.schedule.steps:
                self._step(kt)
                if progress is not None:
                    progress.update(1)
                if not self.live_members():
                    raise BridgeError(f"every member stopped sending (last at step {kt}): {self.lost}")
        except BridgeError as err:
            log.error("the ocean stopped talking (%s); writing the final checkpoint", err)
            self._finish(time.perf_counter() - t0, stream_ended=False)
            raise
        except Stopped as stop:  # a scheduler's time limit, mpirun ending the job, Ctrl-C
            self._stop(stop, f"at ocean step {self.counters.last_step}", t0)
        try:
            return self._finish(time.perf_counter() - t0)
        except Stopped as stop:
            self._stop(stop, "while training on the buffer after the ocean's last step", t0)

    def _stop(self, stop: Stopped, when: str, t0: float) -> NoReturn:
        log.warning("%s %s; writing the final checkpoint and outputs", stop, when)
        self._finish(time.perf_counter() - t0, stream_ended=False, join_timeout=STOP_JOIN_S)
        raise stop

    def live_members(self) -> list[str]:
        return [m for m in self.members if m not in self.lost]

    def _receive(self, member: str, kt: int) -> np.ndarray | None:
        """The member's state at ``kt``; None when the member is lost now (dead, stopped on its own error, NaN
        refused) and ``[ocean] required = false``: the others go on without it, as the ocean would without us."""
        t = time.perf_counter()
        # while the worker waits on a silent member, the others wait on the worker (their puts fill up): it must
        # give up on that member well before they reach their own timeout and leave, healthy, uncoupled
        wait = self.tunnel.timeout / 2 if not self.cfg.ocean.required and len(self.live_members()) > 1 else None
        try:
            return self.tunnel.receive(member, kt, timeout=wait)
        except BridgeError as err:
            if self.cfg.ocean.required:
                raise
            self._drop(member, kt, err)
            return None
        finally:
            self.recv_s += time.perf_counter() - t

    def _drop(self, member: str, kt: int, err: BridgeError) -> None:
        self.lost[member] = {"step": kt, "error": str(err)}
        self.tunnel.drop(member)
        for handler in self.handlers:
            handler.drop(member)
        self.actual[member] = None
        self.pending.pop(member, None)
        log.error("member '%s' lost at step %d (%s); [ocean] required = false: the worker goes on with %d member(s) %s",
                  member, kt, err, len(self.live_members()), self.live_members())

    def _step(self, kt: int) -> None:
        self.learner.check()
        if kt == self.schedule.nit000 - 1 and self.schedule.spinup:
            initial = InitialExchange(kt)
            for handler in self.handlers:
                handler.on_initial(initial)
        received: dict[str, np.ndarray] = {}
        if self.schedule.sends_state(kt):
            for member in self.live_members():
                state = self._receive(member, kt)
                if state is not None:
                    received[member] = state
        # the ocean continues from the worker's state, not its own, at an emulator step ('<name>_emu' fields,
        # which come with mode 'emulate': bridge/config/rules.py)
        emulating = self.schedule.asks_emulated(kt)
        for k, member in enumerate(self.members):
            if member in self.lost:
                continue
            x = received.get(member)
            if x is not None:
                self._on_state(k, member, kt, x, emulating)
            if emulating:
                wanted = EmulatedWanted(member, kt, x)
                for handler in self.handlers:
                    handler.on_emulated_wanted(wanted)
            stepped = MemberStepped(member, kt)
            for handler in self.handlers:
                handler.on_member_stepped(stepped)
            if self.schedule.discards_emulated(kt):
                self._send_placeholder(member, kt, x)
        self.counters.last_step = kt
        every = self.settings.checkpoint.every_steps
        if every and kt % every == 0 and kt >= self.schedule.nit000:
            self.save(final=False)

    def _on_state(self, k: int, member: str, kt: int, x: np.ndarray, emulating: bool) -> None:
        """Count and check the state, hand it to the handlers, then move the member on to it (unless the ocean
        continues from an emulated state at this step: the emulate handler moves it on)."""
        self.counters.received += 1
        valid = bool(np.isfinite(x).all())
        if not valid:
            self.counters.rejected += 1
            bad = [c for c, name in enumerate(self.channels) if not np.isfinite(x[c]).all()]
            log.warning("member '%s' step %d: NaN/Inf in field(s) %s; state rejected (%d so far), training goes on",
                        member, kt, [self.channels[c] for c in bad], self.counters.rejected)
            self.actual[member] = None
        event = StateArrived(member, k, kt, x, valid)
        for handler in self.handlers:
            handler.on_state(event)
        if valid and not emulating:
            self.actual[member] = x

    def _send_placeholder(self, member: str, kt: int, ocean: np.ndarray | None) -> None:
        """OASIS: the '<name>_emu' of the initial step, which the ocean gets and discards (gyre_cpl.F90,
        obridge.F90): the ocean's own state back (zeros where it is not finite or was not sent)."""
        shape = (len(self.channels), self.tunnel.box.nj, self.tunnel.box.ni)
        back = np.zeros(shape) if ocean is None else np.where(np.isfinite(ocean), ocean, 0.0)
        self.tunnel.send(member, "emulated", kt, back)

    # -- end -----------------------------------------------------------------------
    def save(self, final: bool | None = None) -> None:
        """Write the checkpoint.  ``final`` unset means "final once the training thread has stopped":
        a periodic checkpoint that cannot be written (a full disk) is logged and the run goes on, the
        previous one intact, since stopping would lose more; the final one's failure fails the run."""
        final = not self.learner.is_alive() if final is None else final
        with self.learner.lock:
            try:
                save_checkpoint(self.checkpoint, self.engine.trainer, self.buffer, self.counters.as_dict(),
                                self.engine.inference, self.parts)
            except OSError as err:  # models.ncio.WriteError: names the file and the cause
                if final:
                    raise
                log.error("periodic checkpoint at step %d not written, the run goes on: %s",
                          self.counters.last_step, err)

    def _finish(self, wall: float, stream_ended: bool = True, join_timeout: float | None = None) -> dict:
        # while coupled: what the ocean-side figures refer to, and the optimizer steps made by then
        self.stream_timing = {**self.learner.timing(), "train_steps": self.engine.trainer.step}
        if stream_ended:
            self.learner.finish_training(self.settings.train.min_steps, timeout=float("inf"))
        self.learner.stop()
        self.learner.join(join_timeout)  # bounded on a stop: another rank may be gone from the lock-step
        if self.learner.is_alive():
            log.warning("the training thread did not stop within %g s; checkpointing what it has", join_timeout)
        self.learner.check()  # a training thread that failed fails the run (before a checkpoint of it is written)
        self.save(final=True)
        self._write_outputs()
        summary = self.summary(wall)
        if self.tunnel.rank == 0:
            path = self.cfg.run.run_dir / "worker_summary.json"
            path.write_text(json.dumps(summary, indent=2))
        return summary

    def _write_outputs(self) -> None:
        for handler in self.handlers:
            handler.write_outputs()

    def summary(self, wall: float) -> dict:
        """worker_summary.json: the loop's figures, then what each mode's handler adds (emulate: the emulator's and
        persistence's errors; generate: the year each member qualified)."""
        losses = [loss for _, loss in self.learner.history]
        n = max(len(losses) // 5, 1)
        summary = {
            "members": list(self.members), "modes": sorted(self.modes), "worker_ranks": self.tunnel.size,
            "counters": self.counters.as_dict(), "buffer": self.buffer.stats(),
            "train_steps": self.engine.trainer.step, "train_steps_this_run": len(losses),
            "loss_first": float(np.mean(losses[:n])) if losses else None,
            "loss_last": float(np.mean(losses[-n:])) if losses else None,
            "losses": [[s, loss] for s, loss in self.learner.history],
            "wall_s": wall, "receive_s": self.recv_s, **self.learner.timing(),
            "coupled": {k: self.stream_timing[k] for k in ("learner_wall_s", "train_fraction", "busy_fraction",
                                                           "train_steps")},
            "members_lost": self.lost,
            "equilibrium": None,  # without the generate mode
            "posterior": self.learner.posterior,
            "halo": self._halo(),
        }
        for handler in self.handlers:
            summary.update(handler.summary())
        return summary

    def _halo(self) -> dict | None:
        """This rank's halo exchanges while sampling (several worker ranks, models/bands.py)."""
        bands = self.engine.bands
        if bands is None:
            return None
        return {"exchanges": bands.exchange.calls, "exchange_s": bands.exchange.seconds,
                "sample_s": self.learner.sample_s, "reads_rows": list(bands.layout.reads(bands.rank))}

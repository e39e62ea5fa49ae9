"""The worker loop: receive from every member at the ocean's coupling steps, feed
the buffer, answer emulator requests, and checkpoint; the ``Learner`` thread
trains meanwhile.

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
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from bridge.errors import BridgeError
from bridge.worker.checkpoint import save_checkpoint
from bridge.worker.output import rank_path, write_emulation, write_ensemble_stats
from bridge.worker.process import Stopped
from bridge.worker.records import Counters, EmulationRecord, EnsembleRecord
from bridge.worker.samples import BufferedSample
from bridge.worker.tunnel import Schedule

if TYPE_CHECKING:  # annotations only: the parts are built in cli.py
    from bridge.deploy.config import DeployConfig
    from bridge.worker.engine import Engine
    from bridge.worker.equilibrium import EquilibriumWatch
    from bridge.worker.learner import Learner
    from bridge.worker.settings import WorkerSettings
    from bridge.worker.tunnel import Tunnel
    from models.buffers import Buffer
    from models.train import Trainer
from models.metrics import crps_fair_pointwise

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
        self.actual: dict[str, np.ndarray | None] = {m: None for m in self.members}
        self.pending: dict[str, tuple] = {}
        self.ensemble = EnsembleRecord(self.members)
        self.emulation = EmulationRecord(self.members)
        self.recv_s = 0.0
        self.lost: dict[str, dict] = {}  # member -> the step and the error it was lost at ([ocean] required = false)

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
        self.ensemble.drop(member)
        self.emulation.drop(member)
        self.actual[member] = None
        self.pending.pop(member, None)
        log.error("member '%s' lost at step %d (%s); [ocean] required = false: the worker goes on with %d member(s) %s",
                  member, kt, err, len(self.live_members()), self.live_members())

    def _step(self, kt: int) -> None:
        self.learner.check()
        if kt == self.schedule.nit000 - 1 and self.schedule.spinup:
            self._send_initial(kt)
        received = {}
        if self.schedule.sends_state(kt):
            for member in self.live_members():
                state = self._receive(member, kt)
                if state is not None:
                    received[member] = state
        emulating = "emulate" in self.modes and self.schedule.asks_emulated(kt)
        for k, member in enumerate(self.members):
            if member in self.lost:
                continue
            if member in received:
                self._on_state(k, member, kt, received[member], emulating)
            if emulating:
                self._send_emulated(member, kt, received.get(member))
            if "emulate" in self.modes:
                self._ask_ahead(k, member, kt)
            if self.schedule.discards_emulated(kt):
                self._send_placeholder(member, kt, received.get(member))
        self.counters.last_step = kt
        every = self.settings.checkpoint.every_steps
        if every and kt % every == 0 and kt >= self.schedule.nit000:
            self.save(final=False)

    def _on_state(self, k: int, member: str, kt: int, x: np.ndarray, emulating: bool) -> None:
        self.counters.received += 1
        if "ensemble" in self.modes:
            self.ensemble.add(member, kt, x)
        if not np.isfinite(x).all():
            self.counters.rejected += 1
            bad = [c for c, name in enumerate(self.channels) if not np.isfinite(x[c]).all()]
            log.warning("member '%s' step %d: NaN/Inf in field(s) %s; state rejected (%d so far), training goes on",
                        member, kt, [self.channels[c] for c in bad], self.counters.rejected)
            self.actual[member] = None
            return
        if self.watch is not None:
            if self.watch.add(member, kt, x):  # an equilibrated state: a sample of p(x_eq | θ)
                self.buffer.put(BufferedSample(k, self.theta[member], None, x.astype(np.float32)))
                self.counters.pairs += 1
            return
        start = self.actual[member]
        if start is not None and "train" in self.modes:
            self.buffer.put(BufferedSample(k, self.theta[member], start.astype(np.float32), x.astype(np.float32)))
            self.counters.pairs += 1
        if not emulating:
            self.actual[member] = x

    # -- emulation -----------------------------------------------------------------
    def _ask_ahead(self, k: int, member: str, kt: int) -> None:
        """Request the sample of the next emulator step once the state it starts from is known."""
        nxt = kt + self.schedule.freq
        start = self.actual[member]
        if start is None or not self.schedule.sends_state(kt) or nxt > self.schedule.itend \
                or not self.schedule.asks_emulated(nxt):
            return
        seed = zlib.crc32(f"{self.settings.train.seed}:{member}:{nxt}".encode())
        self.learner.request((member, nxt), start, self.theta[member], seed)
        self.pending[member] = (nxt, start)

    def _send_emulated(self, member: str, kt: int, ocean: np.ndarray | None) -> None:
        nxt, start = self.pending.pop(member, (None, None))
        if nxt != kt:  # nothing to start from (first step, or a rejected state): send the ocean's own state back
            sent, spread = ocean if ocean is not None and np.isfinite(ocean).all() else None, None
            if sent is None:
                raise RuntimeError(f"member '{member}' step {kt}: the ocean asks for an emulated state but the "
                                   f"worker has no valid state to start from")
        else:
            samples = self.learner.result((member, kt), timeout=self.cfg.run.result_timeout_s)
            sent = samples[0]
            spread = samples.std(0) if len(samples) > 1 else np.zeros_like(sent)
            if ocean is not None and np.isfinite(ocean).all():
                crps = crps_fair_pointwise(samples, ocean) if len(samples) > 1 else None
                self.emulation.add(member, kt, start, sent, ocean, spread, samples.mean(0), crps)
        out = sent if self.cfg.ocean.emu_mode == "replace" else sent - ocean
        self.tunnel.send(member, "emulated", kt, out)
        self.actual[member] = sent
        self.counters.emulated += 1

    def _send_placeholder(self, member: str, kt: int, ocean: np.ndarray | None) -> None:
        """OASIS: the '<name>_emu' of the initial step, which the ocean gets and discards (gyre_cpl.F90,
        obridge.F90): the ocean's own state back (zeros where it is not finite or was not sent)."""
        shape = (len(self.channels), self.tunnel.box.nj, self.tunnel.box.ni)
        back = np.zeros(shape) if ocean is None else np.where(np.isfinite(ocean), ocean, 0.0)
        self.tunnel.send(member, "emulated", kt, back)

    def _send_initial(self, kt: int) -> None:
        from bridge.worker.engine import generate_state  # torch, only in this mode
        # the config's '<name>_init' fields come with mode 'spinup' (bridge/deploy/rules.py), which loads it (cli.py)
        assert self.generator is not None
        states = []
        for member in self.members:  # before the first receive: no member is lost yet
            state = generate_state(self.generator, self.theta[member], self.engine, self.settings.spinup.num_steps,
                                   seed=zlib.crc32(member.encode()), rest_volume=self.settings.spinup.rest_volume)
            self.tunnel.send(member, "initial", kt, state)
            states.append(state[None])
            log.info("member '%s': generated initial state sent at step %d", member, kt)
        m, box = self.settings.model, self.tunnel.box
        path = rank_path(self.cfg.run.run_dir / self.settings.spinup.output, self.tunnel.rank, self.tunnel.size)
        write_emulation(path, self.channels, self.members, [kt], {"initial": np.stack(states)}, box, m.dx, m.dy,
                        self.cfg.run.dt, self.engine.mask[0, 0].cpu().numpy().astype("i1"))

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

    def _write_generators(self, watch) -> None:
        """The generate mode's surrogate and baseline as standalone checkpoints ([worker.spinup] checkpoint), and
        the members' annual means with the year each qualified (``watch``, its equilibrium detector)."""
        g, run_dir = self.settings.generate, self.cfg.run.run_dir
        watch.write(run_dir / g.equilibrium_output)
        if self.engine.trainer.step == 0:
            log.warning("no member reached equilibrium with a full batch: no generator written (equilibrium: %s)",
                        watch.qualified())
            return
        self.engine.trainer.save(run_dir / g.output)
        if self.engine.baseline is not None:
            self.engine.baseline.save(run_dir / g.baseline_output)
        log.info("generator written to %s (%d steps on %d equilibrated state(s)); members qualified at model year %s",
                 run_dir / g.output, self.engine.trainer.step, self.buffer.n_put, watch.qualified())

    def _write_outputs(self) -> None:
        if self.watch is not None:
            self._write_generators(self.watch)
        m, box, run_dir = self.settings.model, self.tunnel.box, self.cfg.run.run_dir
        rank, size, dt = self.tunnel.rank, self.tunnel.size, self.cfg.run.dt
        mask = self.engine.mask[0, 0].cpu().numpy().astype("i1")
        if "ensemble" in self.modes and self.ensemble.states:
            path = rank_path(run_dir / self.settings.ensemble.output, rank, size)
            write_ensemble_stats(path, self.channels, self.ensemble.steps, self.ensemble.array(),
                                 self.settings.ensemble.levels, box, m.dx, m.dy, dt, mask)
            log.info("ensemble statistics written to %s", path)
        if "emulate" in self.modes and self.emulation.common_steps():
            path = rank_path(run_dir / self.settings.emulate.output, rank, size)
            e = self.emulation
            arrays = {"emulated": e.arrays(e.sent), "ocean": e.arrays(e.ocean), "start": e.arrays(e.start)}
            if self.settings.emulate.samples > 1:
                arrays.update(mean=e.arrays(e.mean), spread=e.arrays(e.spread), crps=e.arrays(e.crps))
            write_emulation(path, self.channels, self.members, e.common_steps(), arrays, box, m.dx, m.dy, dt, mask)
            log.info("emulated states written to %s", path)

    def summary(self, wall: float) -> dict:
        losses = [loss for _, loss in self.learner.history]
        n = max(len(losses) // 5, 1)
        return {
            "members": list(self.members), "modes": sorted(self.modes), "worker_ranks": self.tunnel.size,
            "counters": self.counters.as_dict(), "buffer": self.buffer.stats(),
            "train_steps": self.engine.trainer.step, "train_steps_this_run": len(losses),
            "loss_first": float(np.mean(losses[:n])) if losses else None,
            "loss_last": float(np.mean(losses[-n:])) if losses else None,
            "losses": [[s, loss] for s, loss in self.learner.history],
            "wall_s": wall, "receive_s": self.recv_s, **self.learner.timing(), **self.emulation.errors(),
            "coupled": {k: self.stream_timing[k] for k in ("learner_wall_s", "train_fraction", "busy_fraction",
                                                           "train_steps")},
            "members_lost": self.lost,
            "equilibrium": None if self.watch is None else self.watch.qualified(),
            "posterior": self.learner.posterior,
            "halo": self._halo(),
        }

    def _halo(self) -> dict | None:
        """This rank's halo exchanges while sampling (several worker ranks, models/bands.py)."""
        bands = self.engine.bands
        if bands is None:
            return None
        return {"exchanges": bands.exchange.calls, "exchange_s": bands.exchange.seconds,
                "sample_s": self.learner.sample_s, "reads_rows": list(bands.layout.reads(bands.rank))}

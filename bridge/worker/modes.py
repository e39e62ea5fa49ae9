"""The worker's modes (``[worker] modes``): one handler per mode, driven by the loop (``runtime.Runtime``).

The loop turns each coupling step into events and hands each event to the handlers of the configured modes,
always in the order of ``MODE_HANDLERS``.  At one step, for every member still there, in member order:

- ``InitialExchange`` (once, at nit000-1 with '<name>_init' fields, before any receive): ``on_initial``;
- ``StateArrived`` (the member's state at a state step; ``valid`` False for NaN/Inf, which the loop counts
  and rejects before it calls the handlers): ``on_state``;
- ``EmulatedWanted`` (the ocean waits for the emulated state at an emulator step): ``on_emulated_wanted``;
- ``MemberStepped`` (the member's exchanges of the step are over, the state it continues from is known):
  ``on_member_stepped``.

A lost member (``[ocean] required = false``) reaches ``drop``; at the end ``write_outputs`` (after the final
checkpoint) and ``summary`` (merged into worker_summary.json).  The loop keeps what every mode shares: the
state each member continued from (``Runtime.actual``) and the emulated samples asked for (``Runtime.pending``).
Unknown mode names never get here: ``[worker] modes`` is checked against ``WORKER_MODES`` at config load.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.worker.output import rank_path, write_emulation, write_ensemble_stats
from bridge.worker.records import EmulationRecord, EnsembleRecord
from bridge.worker.samples import BufferedSample
from models.metrics import crps_fair_pointwise

if TYPE_CHECKING:  # the handlers read the loop's parts through it
    from bridge.worker.equilibrium import EquilibriumWatch
    from bridge.worker.runtime import Runtime

log = logging.getLogger(__name__)


# -- events ------------------------------------------------------------------------
@dataclass(frozen=True)
class InitialExchange:
    """Step nit000-1 with '<name>_init' fields: every member waits for the state it starts from."""
    kt: int


@dataclass(frozen=True, eq=False)
class StateArrived:
    """Member ``member`` (index ``k``) sent ``x`` (C, nj, ni) at step ``kt``; ``valid``: every value is finite."""
    member: str
    k: int
    kt: int
    x: np.ndarray
    valid: bool


@dataclass(frozen=True, eq=False)
class EmulatedWanted:
    """The ocean waits at ``kt`` for the emulated state of ``member``; ``ocean``: what it sent at ``kt``, if any."""
    member: str
    kt: int
    ocean: np.ndarray | None


@dataclass(frozen=True)
class MemberStepped:
    """The member's exchanges of step ``kt`` are over: ``Runtime.actual`` holds the state it continues from."""
    member: str
    kt: int


# -- handlers ----------------------------------------------------------------------
class Handler:
    """One mode's part of the loop; each method does nothing unless the mode needs it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def on_initial(self, event: InitialExchange) -> None:
        pass

    def on_state(self, event: StateArrived) -> None:
        pass

    def on_emulated_wanted(self, event: EmulatedWanted) -> None:
        pass

    def on_member_stepped(self, event: MemberStepped) -> None:
        pass

    def drop(self, member: str) -> None:
        """``member`` is lost: what is recorded of it from now on is NaN."""

    def write_outputs(self) -> None:
        pass

    def summary(self) -> dict[str, Any]:
        return {}


class SpinupHandler(Handler):
    """spinup: at nit000-1 sends each member a state generated for its θ (``WorkerParts.generator``, a
    ``generate`` surrogate) as '<name>_init', and writes them to ``[worker.spinup] output``."""

    def on_initial(self, event: InitialExchange) -> None:
        from bridge.worker.engine import generate_state  # torch, only in this mode
        rt, kt = self.rt, event.kt
        # the config's '<name>_init' fields come with mode 'spinup' (bridge/config/rules.py), which loads it (cli.py)
        assert rt.generator is not None
        states = []
        for member in rt.members:  # before the first receive: no member is lost yet
            state = generate_state(rt.generator, rt.theta[member], rt.engine, rt.settings.spinup.num_steps,
                                   seed=zlib.crc32(member.encode()), rest_volume=rt.settings.spinup.rest_volume)
            rt.tunnel.send(member, "initial", kt, state)
            states.append(state[None])
            log.info("member '%s': generated initial state sent at step %d", member, kt)
        m, box = rt.settings.model, rt.tunnel.box
        path = rank_path(rt.cfg.run.run_dir / rt.settings.spinup.output, rt.tunnel.rank, rt.tunnel.size)
        write_emulation(path, rt.channels, rt.members, [kt], {"initial": np.stack(states)}, box, m.dx, m.dy,
                        rt.cfg.run.dt, rt.engine.mask[0, 0].cpu().numpy().astype("i1"))


class GenerateHandler(Handler):
    """generate: the equilibrium watch (bridge/worker/equilibrium.py) sees every valid state; a state of an
    equilibrated member is a sample of p(x_eq | θ) for the buffer.  Writes the generators and equilibrium.nc."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        if rt.watch is None:
            raise ValueError("mode 'generate' needs an equilibrium watch (WorkerParts.watch)")
        self.watch: EquilibriumWatch = rt.watch

    def on_state(self, event: StateArrived) -> None:
        if event.valid and self.watch.add(event.member, event.kt, event.x):
            rt = self.rt
            rt.buffer.put(BufferedSample(event.k, rt.theta[event.member], None, event.x.astype(np.float32)))
            rt.counters.pairs += 1

    def write_outputs(self) -> None:
        """The surrogate and baseline as standalone checkpoints ([worker.spinup] checkpoint), and the members'
        annual means with the year each qualified."""
        rt = self.rt
        g, run_dir, trainer = rt.settings.generate, rt.cfg.run.run_dir, rt.engine.trainer
        self.watch.write(run_dir / g.equilibrium_output)
        if trainer.step == 0:
            log.warning("no member reached equilibrium with a full batch: no generator written (equilibrium: %s)",
                        self.watch.qualified())
            return
        trainer.save(run_dir / g.output)
        if rt.engine.baseline is not None:
            rt.engine.baseline.save(run_dir / g.baseline_output)
        log.info("generator written to %s (%d steps on %d equilibrated state(s)); members qualified at model year %s",
                 run_dir / g.output, trainer.step, rt.buffer.n_put, self.watch.qualified())

    def summary(self) -> dict[str, Any]:
        return {"equilibrium": self.watch.qualified()}


class EnsembleHandler(Handler):
    """ensemble: every member's state at every state step (rejected ones too); the statistics over the members
    go to ``[worker.ensemble] output``."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.record = EnsembleRecord(rt.members)

    def on_state(self, event: StateArrived) -> None:
        self.record.add(event.member, event.kt, event.x)

    def drop(self, member: str) -> None:
        self.record.drop(member)

    def write_outputs(self) -> None:
        rt, record = self.rt, self.record
        if not record.states:
            return
        m, box = rt.settings.model, rt.tunnel.box
        path = rank_path(rt.cfg.run.run_dir / rt.settings.ensemble.output, rt.tunnel.rank, rt.tunnel.size)
        write_ensemble_stats(path, rt.channels, record.steps, record.array(), rt.settings.ensemble.levels, box,
                             m.dx, m.dy, rt.cfg.run.dt, rt.engine.mask[0, 0].cpu().numpy().astype("i1"))
        log.info("ensemble statistics written to %s", path)


class TrainHandler(Handler):
    """train: a valid state and the state its member continued from make a pair (θ, x_t, x_{t+Δ})."""

    def on_state(self, event: StateArrived) -> None:
        rt = self.rt
        start = rt.actual[event.member]  # the loop moves it on to this state after the handlers
        if event.valid and start is not None:
            rt.buffer.put(BufferedSample(event.k, rt.theta[event.member], start.astype(np.float32),
                                         event.x.astype(np.float32)))
            rt.counters.pairs += 1


class EmulateHandler(Handler):
    """emulate: answers the ocean's '<name>_emu' with a diffusion sample of the step, asked of the learner as
    soon as the state it starts from is known; keeps what was sent beside the ocean's own step
    (``[worker.emulate] output``, the summary's errors)."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.record = EmulationRecord(rt.cfg.components)

    def on_member_stepped(self, event: MemberStepped) -> None:
        """Request the sample of the next emulator step once the state it starts from is known."""
        rt, member, kt = self.rt, event.member, event.kt
        nxt = kt + rt.schedule.freq
        start = rt.actual[member]
        if start is None or not rt.schedule.sends_state(kt) or nxt > rt.schedule.itend \
                or not rt.schedule.asks_emulated(nxt):
            return
        seed = zlib.crc32(f"{rt.settings.train.seed}:{member}:{nxt}".encode())
        rt.learner.request((member, nxt), start, rt.theta[member], seed)
        rt.pending[member] = (nxt, start)

    def on_emulated_wanted(self, event: EmulatedWanted) -> None:
        rt, member, kt, ocean = self.rt, event.member, event.kt, event.ocean
        asked = rt.pending.pop(member, None)  # (step, start) of the sample asked at the previous state step
        if asked is None or asked[0] != kt:
            # nothing to start from (first step, or a rejected state): send the ocean's own state back
            sent = ocean if ocean is not None and np.isfinite(ocean).all() else None
            if sent is None:
                raise RuntimeError(f"member '{member}' step {kt}: the ocean asks for an emulated state but the "
                                   f"worker has no valid state to start from")
        else:
            start = asked[1]
            samples = rt.learner.result((member, kt), timeout=rt.cfg.run.result_timeout_s)
            sent = samples[0]
            spread = samples.std(0) if len(samples) > 1 else np.zeros_like(sent)
            if ocean is not None and np.isfinite(ocean).all():
                crps = crps_fair_pointwise(samples, ocean) if len(samples) > 1 else None
                self.record.add(member, kt, start, sent, ocean, spread, samples.mean(0), crps)
        out = sent if rt.cfg.ocean.emu_mode == "replace" else sent - ocean
        rt.tunnel.send(member, "emulated", kt, out)
        rt.actual[member] = sent
        rt.counters.emulated += 1

    def drop(self, member: str) -> None:
        self.record.drop(member)

    def write_outputs(self) -> None:
        rt, e = self.rt, self.record
        steps = e.common_steps()
        if not steps:
            return
        m, box = rt.settings.model, rt.tunnel.box
        path = rank_path(rt.cfg.run.run_dir / rt.settings.emulate.output, rt.tunnel.rank, rt.tunnel.size)
        arrays = {"emulated": e.arrays(e.sent), "ocean": e.arrays(e.ocean), "start": e.arrays(e.start)}
        if rt.settings.emulate.samples > 1:
            arrays.update(mean=e.arrays(e.mean), spread=e.arrays(e.spread), crps=e.arrays(e.crps))
        write_emulation(path, rt.channels, rt.members, steps, arrays, box, m.dx, m.dy, rt.cfg.run.dt,
                        rt.engine.mask[0, 0].cpu().numpy().astype("i1"))
        log.info("emulated states written to %s", path)

    def summary(self) -> dict[str, Any]:
        return self.record.errors()  # {} until an emulated step was compared with the ocean's own


class InferHandler(Handler):
    """infer: the posterior estimator (``Engine.inference``, built from ``[worker.infer]``) learns in the training
    thread from the train mode's buffered pairs, and the learner writes posterior.nc after the drain
    (``Learner.finish_training``); its summary is the loop's ``posterior``.  Here: every valid state of a held-out
    member (``holdout_members``) is kept as a held-out observation for the calibration diagnostics, whether or not
    a batch ever draws it (the training thread leaves them out of the posterior's batches)."""

    def on_state(self, event: StateArrived) -> None:
        inference = self.rt.engine.inference
        if not event.valid or inference is None or not inference.holds_out(event.k):
            return
        with self.rt.learner.lock:  # the training thread reads the held-out set too
            inference.hold_out(event.k, self.rt.theta[event.member], event.x.astype(np.float32))


# the modes in the order the loop calls them; with bridge.config.config.WORKER_MODES, every name a config may hold
MODE_HANDLERS: dict[str, type[Handler]] = {
    "spinup": SpinupHandler, "generate": GenerateHandler, "ensemble": EnsembleHandler, "train": TrainHandler,
    "emulate": EmulateHandler, "infer": InferHandler,
}


def mode_handlers(modes: Iterable[str], rt: Runtime) -> list[Handler]:
    """The handlers of ``modes``, in the loop's order (that of ``MODE_HANDLERS``, not of ``modes``)."""
    chosen = set(modes)
    unknown = sorted(chosen - set(MODE_HANDLERS))
    if unknown:  # the config's own check comes first (bridge/config/config.py, choices=WORKER_MODES)
        raise ValueError(f"[worker] modes: unknown mode(s) {unknown}; known: {list(MODE_HANDLERS)}")
    return [cls(rt) for name, cls in MODE_HANDLERS.items() if name in chosen]

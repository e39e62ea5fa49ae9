"""The worker's modes as handlers (bridge/worker/modes.py): the table built from ``[worker] modes``, and the loop
(``Runtime._step``) handing each state to exactly the handlers of the configured modes.  A real config and a real
Runtime; the tunnel, the learner and the engine are small stand-ins that record what the loop asks of them."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from worker_fixtures import write_config

from bridge.config.config import WORKER_MODES, load_config
from bridge.worker.modes import (
    MODE_HANDLERS,
    EmulateHandler,
    EnsembleHandler,
    GenerateHandler,
    InferHandler,
    SpinupHandler,
    StateArrived,
    TrainHandler,
    mode_handlers,
)
from bridge.worker.records import Counters
from bridge.worker.runtime import Runtime, WorkerParts
from bridge.worker.settings import worker_settings
from bridge.worker.tunnel import channel_names

N = 8  # grid points each way


class Tunnel:
    """The worker component, without MPI: each member's state at step kt is ``100 k + kt`` everywhere, or NaN at
    the steps in ``nan``; every receive and send is logged in order."""
    rank, size, timeout = 0, 1, 60.0

    def __init__(self, channels: int, nan: frozenset[tuple[str, int]] = frozenset()):
        self.box = SimpleNamespace(nj=N, ni=N)
        self.channels, self.nan = channels, nan
        self.members: tuple[str, ...] = ()
        self.log: list[tuple[str, str, int]] = []
        self.sent: list[np.ndarray] = []

    def state(self, member: str, kt: int) -> np.ndarray:
        value = np.nan if (member, kt) in self.nan else 100.0 * self.members.index(member) + kt
        return np.full((self.channels, N, N), value)

    def receive(self, member: str, step: int, timeout: float | None = None) -> np.ndarray:
        self.log.append(("receive", member, step))
        return self.state(member, step)

    def send(self, member: str, role: str, step: int, state: np.ndarray) -> None:
        self.log.append((role, member, step))
        self.sent.append(state)

    def drop(self, member: str) -> None:
        self.log.append(("drop", member, -1))


class Learner:
    """The training thread's interface to the loop: a requested sample is the start plus 0.5."""

    def __init__(self):
        self.requests: list[tuple[tuple[str, int], float]] = []
        self.samples: dict[tuple[str, int], np.ndarray] = {}

    def check(self) -> None:
        pass

    def request(self, key, state: np.ndarray, theta: np.ndarray, seed: int) -> None:
        self.requests.append((key, float(state.flat[0])))
        self.samples[key] = (state + 0.5)[None]

    def result(self, key, timeout: float) -> np.ndarray:
        return self.samples.pop(key)


class Buffer(list):
    def put(self, sample) -> None:
        self.append(sample)


def runtime(tmp_path: Path, modes: tuple[str, ...], *, members: int = 2, emulate: bool = False,
            nan: frozenset[tuple[str, int]] = frozenset()) -> Runtime:
    """A Runtime over a 2-member gyre config with states every 4 steps, steps 0..12 (nit000 = 1)."""
    cfg = load_config(write_config(tmp_path, steps=12, freq=4, n=N, members=members, modes=modes, emulate=emulate))
    channels = channel_names(cfg)
    tunnel = Tunnel(len(channels), nan)
    tunnel.members = tuple(cfg.components)
    engine = SimpleNamespace(trainer=SimpleNamespace(step=0), bands=None, inference=None, baseline=None)
    theta = {m: np.array([0.1 + 0.01 * k]) for k, m in enumerate(cfg.components)}
    parts = WorkerParts(cfg, worker_settings(cfg), tunnel, engine, Buffer(), Learner(),  # type: ignore[arg-type]
                        Counters(), theta, channels, tmp_path / "ck.pt")
    return Runtime(parts)


def run_steps(rt: Runtime) -> None:
    for kt in rt.schedule.steps:
        rt._step(kt)


def test_the_table_names_every_mode_a_config_may_hold():
    assert set(MODE_HANDLERS) == set(WORKER_MODES)
    assert list(MODE_HANDLERS.values()) == [SpinupHandler, GenerateHandler, EnsembleHandler, TrainHandler,
                                            EmulateHandler, InferHandler]


def test_handlers_come_from_the_modes_in_the_tables_order(tmp_path):
    rt = runtime(tmp_path, ("train", "ensemble"))
    assert [type(h) for h in rt.handlers] == [EnsembleHandler, TrainHandler]
    assert all(h.rt is rt for h in rt.handlers)
    chosen = mode_handlers(["infer", "emulate", "train", "ensemble"], rt)
    assert [type(h) for h in chosen] == [EnsembleHandler, TrainHandler, EmulateHandler, InferHandler]
    with pytest.raises(ValueError, match=r"unknown mode\(s\) \['forecast'\]"):
        mode_handlers(["train", "forecast"], rt)
    with pytest.raises(ValueError, match="mode 'generate' needs an equilibrium watch"):
        mode_handlers(["generate"], rt)  # this runtime has none: cli.py builds it with the mode


@pytest.mark.parametrize("modes", [("train",), ("ensemble",), ("train", "ensemble")])
def test_each_state_reaches_exactly_the_configured_handlers(tmp_path, modes):
    rt = runtime(tmp_path, modes)
    run_steps(rt)
    a, b = rt.members
    tunnel = rt.tunnel
    assert isinstance(tunnel, Tunnel)
    # the ocean's side of the protocol does not depend on the modes: one receive per member and state step
    assert tunnel.log == [("receive", m, kt) for kt in (0, 4, 8, 12) for m in (a, b)]
    assert rt.counters.received == 8 and rt.counters.rejected == 0
    pairs = [(s.member, float(s.state.flat[0]), float(s.target.flat[0]), float(s.theta[0])) for s in rt.buffer]
    if "train" in modes:  # each state after the first makes a pair with the one before, per member
        assert pairs == [(k, 100.0 * k + kt - 4, 100.0 * k + kt, 0.1 + 0.01 * k) for kt in (4, 8, 12) for k in (0, 1)]
    else:
        assert pairs == []
    assert rt.counters.pairs == len(pairs)
    ensemble = [h for h in rt.handlers if isinstance(h, EnsembleHandler)]
    if "ensemble" in modes:
        record = ensemble[0].record
        assert record.steps == [0, 4, 8, 12]
        np.testing.assert_array_equal(record.array()[:, :, 0, 0, 0], [[kt, 100.0 + kt] for kt in (0, 4, 8, 12)])
    else:
        assert ensemble == []
    assert {m: float(x.flat[0]) for m, x in rt.actual.items() if x is not None} == {a: 12.0, b: 112.0}


def test_a_rejected_state_reaches_only_the_ensemble(tmp_path):
    """NaN at step 4 of the first member: counted and rejected, kept in the ensemble's record, no pair from or
    to it; the member's pairs start again from its next valid state."""
    first = load_config(write_config(tmp_path / "names", members=2)).components[0]
    rt = runtime(tmp_path, ("train", "ensemble"), nan=frozenset({(first, 4)}))
    run_steps(rt)
    assert (rt.counters.received, rt.counters.rejected) == (8, 1)
    pairs = [(s.member, float(s.state.flat[0]), float(s.target.flat[0])) for s in rt.buffer]
    assert pairs == [(1, 100.0, 104.0), (1, 104.0, 108.0), (0, 8.0, 12.0), (1, 108.0, 112.0)]
    record = next(h for h in rt.handlers if isinstance(h, EnsembleHandler)).record
    assert np.isnan(record.array()[1, 0]).all() and np.isfinite(record.array()[1, 1]).all()


def test_a_handler_sees_the_event_the_loop_builds(tmp_path):
    rt = runtime(tmp_path, ("train",))
    (train,) = rt.handlers
    a = rt.members[0]
    x0, x1 = np.full((4, N, N), 1.0), np.full((4, N, N), 2.0)
    train.on_state(StateArrived(a, 0, 0, x0, True))  # nothing to pair with yet
    rt.actual[a] = x0
    train.on_state(StateArrived(a, 0, 4, x1, False))  # invalid: no pair
    train.on_state(StateArrived(a, 0, 4, x1, True))
    assert [(float(s.state[0, 0, 0]), float(s.target[0, 0, 0])) for s in rt.buffer] == [(1.0, 2.0)]


def test_emulate_answers_in_the_ocean_order(tmp_path):
    """With emulate: the sample of step kt+4 is asked as soon as x_kt is known, and sent when the ocean asks
    at kt+4, member after member; the pair of that step starts from what was sent."""
    rt = runtime(tmp_path, ("train", "emulate"), emulate=True)
    run_steps(rt)
    a, b = rt.members
    tunnel, learner = rt.tunnel, rt.learner
    assert isinstance(tunnel, Tunnel) and isinstance(learner, Learner)
    expected = [("receive", a, 0), ("receive", b, 0)]
    for kt in (4, 8, 12):
        expected += [("receive", a, kt), ("receive", b, kt), ("emulated", a, kt), ("emulated", b, kt)]
    assert tunnel.log == expected
    # asked from the ocean's state at 0, then from the emulated state the ocean continued from; none past itend
    assert learner.requests == [((a, 4), 0.0), ((b, 4), 100.0), ((a, 8), 0.5), ((b, 8), 100.5),
                                ((a, 12), 1.0), ((b, 12), 101.0)]
    assert [float(x.flat[0]) for x in tunnel.sent] == [0.5, 100.5, 1.0, 101.0, 1.5, 101.5]
    pairs = [(s.member, float(s.state.flat[0]), float(s.target.flat[0])) for s in rt.buffer]
    assert pairs == [(0, 0.0, 4.0), (1, 100.0, 104.0), (0, 0.5, 8.0), (1, 100.5, 108.0), (0, 1.0, 12.0),
                     (1, 101.0, 112.0)]
    emulate = next(h for h in rt.handlers if isinstance(h, EmulateHandler))
    assert emulate.record.common_steps() == [4, 8, 12] and rt.counters.emulated == 6
    assert rt.pending == {}
    errors = emulate.summary()
    assert errors["emulated_steps"] == 3
    assert errors["emulator_mse"] == pytest.approx(np.mean([3.5 ** 2, 7.0 ** 2, 10.5 ** 2]))
    assert errors["persistence_mse"] == pytest.approx(np.mean([4.0 ** 2, 7.5 ** 2, 11.0 ** 2]))

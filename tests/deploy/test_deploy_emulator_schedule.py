"""The worker's schedule of '<name>_emu' exchanges (bridge/worker/tunnel.py::Schedule): on OASIS they also
travel at the initial step nit000-1, where the ocean discards them (OASIS couples every field at every period
from t = 0); on MPI the protocol is the one it always was."""
from __future__ import annotations

import pytest

from bridge.worker.tunnel import Schedule

FIELDS = [{"name": n, "direction": d, "freq": 12}
          for n, d in (("ssh", "ocean_to_worker"), ("ssh_emu", "worker_to_ocean"))]


@pytest.mark.parametrize("backend, at_start", [("mpi", False), ("oasis", True)])
def test_emu_at_the_initial_step_only_on_oasis(make_config, backend, at_start):
    cfg = make_config(run={"backend": backend, "nit000": 25, "steps": 48},
                      worker={"modes": ["train", "emulate"]}, fields=FIELDS)
    s = Schedule.from_config(cfg)
    assert [kt for kt in s.steps if s.discards_emulated(kt)] == ([24] if at_start else [])
    assert [kt for kt in s.steps if s.asks_emulated(kt)] == [36, 48, 60, 72]  # unchanged on both backends
    assert s.state_steps() == [24, 36, 48, 60, 72]


def test_no_emu_fields_nothing_at_start(make_config):
    s = Schedule.from_config(make_config(run={"backend": "oasis"}))
    assert not any(s.discards_emulated(kt) for kt in s.steps) and s.emu_freq == 0

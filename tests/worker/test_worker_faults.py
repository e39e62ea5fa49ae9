"""Faults: the worker killed mid-run, the ocean gone silent, NaN/bad configs, an interrupted checkpoint write."""
from __future__ import annotations

import os
import re
import select
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from worker_fixtures import launch, write_config

STANDIN = str(Path(__file__).with_name("standin_ocean.py"))


def kill_worker_when_coupled(proc, until: str, deadline_s: float = 120) -> str:
    """Follow the job's output; SIGKILL the worker once it reports its pid; return the output
    once ``until`` appears or the job ends (the job is then ended, by its mpirun pid)."""
    os.set_blocking(proc.stdout.fileno(), False)
    out, killed, t0 = "", False, time.monotonic()
    while proc.poll() is None and until not in out:
        if time.monotonic() - t0 > deadline_s:
            proc.kill()
            raise AssertionError("coupled job hung after the worker was killed:\n" + out)
        if select.select([proc.stdout], [], [], 0.5)[0]:
            out += proc.stdout.read() or ""
        m = re.search(r"tunnel: rank 0/1 \(pid (\d+)\)", out)
        if m and not killed:
            os.kill(int(m.group(1)), signal.SIGKILL)
            killed = True
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    out += proc.stdout.read() or ""
    assert killed, "the worker never reported its pid:\n" + out
    return out


@pytest.mark.parametrize("required", [False, True])
def test_worker_killed_mid_run(tmp_path, gyre_exe, required):
    """ln_obr_required = .false.: gyre goes on uncoupled to its last step; .true.: the job stops, never hangs.

    (With .false. the job is ended by the test after gyre's normal end: Open MPI's MPI_Finalize
    then waits for the killed process, outside gyre's and the worker's control.)"""
    # the timeout also bounds the worker's start-up (torch import) before the end of definitions,
    # which takes several seconds on a loaded 2-core machine
    config = write_config(tmp_path, steps=4000, required=required, timeout=15.0)
    out = kill_worker_when_coupled(launch(config, popen=True), until="gyre: normal end")
    if required:
        assert "gyre: normal end" not in out, out
    else:
        assert "continuing UNCOUPLED" in out and "gyre: normal end" in out, out
        assert (tmp_path / "gyre_00004000_restart.nc").is_file()


def test_ocean_gone_worker_stops_after_timeout_with_checkpoint(tmp_path):
    """The ocean stops sending after step 20: the worker waits its timeout, names member, field and step,
    and writes its final checkpoint."""
    config = write_config(tmp_path, steps=80, timeout=10.0, ocean_args=(STANDIN, "silent", "20"))
    t0 = time.monotonic()
    res = launch(config, timeout=120)
    assert res.returncode != 0
    assert re.search(r"field 'ssh' .*get at step 24 .*component 'gyre'", res.stdout), res.stdout
    assert "writing the final checkpoint" in res.stdout
    state = torch.load(tmp_path / "worker_ckpt.pt", weights_only=False)
    assert state["counters"]["last_step"] == 23 and state["counters"]["received"] == 6
    assert time.monotonic() - t0 < 100


# --------------------------------------------------------------------------- in-process checks
def tiny_worker_state(tmp_path):
    from bridge.partition import BoxPartition
    from bridge.worker.engine import Engine, build_trainer
    from bridge.worker.settings import ModelSettings, TrainSettings, WorkerSettings
    from models.buffers import BufferConfig, make_buffer
    from models.data import DataSpec

    settings = WorkerSettings(train=TrainSettings(batch_size=2, norm_warmup_steps=1),
                              model=ModelSettings(model_channels=4, levels=1))
    trainer = build_trainer(DataSpec(("ssh",), ("tau0",), 8, 8), settings, "cpu", False, 1)
    buffer = make_buffer(BufferConfig(kind="reservoir", capacity=8, watermark=2, seed=3))
    rng = np.random.default_rng(0)
    for k in range(5):
        buffer.put((0, np.ones(1, np.float32), rng.random((1, 8, 8), np.float32), rng.random((1, 8, 8), np.float32)))
    engine = Engine(trainer, BoxPartition(8, 8, 0, 0, 8, 8), np.ones((8, 8)), False)
    engine.train(buffer.get(2))
    return trainer, buffer, settings


def test_checkpoint_round_trip_restores_buffer_and_counters(tmp_path):
    from bridge.worker.checkpoint import load_checkpoint, restore, save_checkpoint
    from bridge.worker.engine import build_trainer
    from models.buffers import BufferConfig, make_buffer
    from models.data import DataSpec

    trainer, buffer, settings = tiny_worker_state(tmp_path)
    path = save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {"received": 7, "last_step": 40})
    fresh = build_trainer(DataSpec(("ssh",), ("tau0",), 8, 8), settings, "cpu", False, 1)
    other = make_buffer(BufferConfig(kind="reservoir", capacity=8, watermark=2, seed=99))
    counters = restore(load_checkpoint(path), fresh, other)
    assert counters == {"received": 7, "last_step": 40} and fresh.step == trainer.step == 1
    assert (other.n_put, other.n_got, len(other)) == (buffer.n_put, buffer.n_got, len(buffer)) == (5, 2, 5)
    for a, b in zip(other.get(2), buffer.get(2)):  # same contents and the same next draws
        assert a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:]))


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    import bridge.worker.checkpoint as ckpt

    trainer, buffer, _ = tiny_worker_state(tmp_path)
    path = ckpt.save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {"received": 1})
    good = path.read_bytes()

    def dying_save(obj, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt("killed during the write")

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, trainer, buffer, {"received": 2})
    assert path.read_bytes() == good
    assert ckpt.load_checkpoint(path)["counters"] == {"received": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left behind


def test_unreadable_checkpoint_is_named(tmp_path):
    from bridge.worker.checkpoint import load_checkpoint

    bad = tmp_path / "ck.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"ck.pt cannot be read"):
        load_checkpoint(bad)

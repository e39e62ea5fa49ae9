"""Worker checkpoints in process: exact round trip under the safe loader, planted files refused,
full-disk and interrupted writes, temporary files of killed writers, file modes, and a buffer
capacity changed on resume."""
from __future__ import annotations

import errno
import logging
import os
import pickle
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import bridge.worker.checkpoint as ckpt
from models.ncio import WriteError, atomic_write

HOST = socket.gethostname().split(".")[0]


def tiny_worker_state(tmp_path, capacity=8, kind="reservoir", dtypes=(np.float32, np.float32)):
    """A trained-one-step trainer and a buffer of 5 samples (2 of them served)."""
    from bridge.partition import BoxPartition
    from bridge.worker.engine import Engine, build_trainer
    from bridge.worker.settings import ModelSettings, TrainSettings, WorkerSettings
    from models.buffers import BufferConfig, make_buffer
    from models.data import DataSpec

    settings = WorkerSettings(train=TrainSettings(batch_size=2, norm_warmup_steps=1),
                              model=ModelSettings(model_channels=4, levels=1))
    trainer = build_trainer(DataSpec(("ssh",), ("tau0",), 8, 8), settings, "cpu", False, 1)
    buffer = make_buffer(BufferConfig(kind=kind, capacity=capacity, watermark=2, seed=3))
    rng = np.random.default_rng(0)
    theta_dtype, x_dtype = dtypes
    for k in range(5):
        buffer.put((k, np.full(1, 0.1 * k, theta_dtype), rng.random((1, 8, 8)).astype(x_dtype),
                    rng.random((1, 8, 8)).astype(x_dtype)))
    engine = Engine(trainer, BoxPartition(8, 8, 0, 0, 8, 8), np.ones((8, 8)), False)
    engine.train(buffer.get(2))
    return trainer, buffer, settings


def fresh_parts(settings, capacity=8, kind="reservoir"):
    from bridge.worker.engine import build_trainer
    from models.buffers import BufferConfig, make_buffer
    from models.data import DataSpec

    trainer = build_trainer(DataSpec(("ssh",), ("tau0",), 8, 8), settings, "cpu", False, 1)
    return trainer, make_buffer(BufferConfig(kind=kind, capacity=capacity, watermark=2, seed=99))


def same_sample(a, b) -> bool:
    """Bit for bit, the same types and dtypes."""
    return type(a[0]) is type(b[0]) and a[0] == b[0] and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(a[1:], b[1:]))


def same_state(a, b) -> bool:
    """Nested state dicts equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b


# --------------------------------------------------------------------------- round trip, safe loading
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float32)])
def test_checkpoint_round_trip_restores_buffer_and_counters(tmp_path, dtypes):
    trainer, buffer, settings = tiny_worker_state(tmp_path, dtypes=dtypes)
    saved_items = buffer.state_dict()["items"]
    path = ckpt.save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {"received": 7, "last_step": np.int64(40)})
    assert torch.load(path, weights_only=True)["format"] == ckpt.FORMAT  # the file needs no unsafe unpickling
    fresh, other = fresh_parts(settings)
    counters = ckpt.restore(ckpt.load_checkpoint(path), fresh, other)
    assert counters == {"received": 7, "last_step": 40} and type(counters["last_step"]) is np.int64
    assert fresh.step == trainer.step == 1
    assert (other.n_put, other.n_got, len(other)) == (buffer.n_put, buffer.n_got, len(buffer)) == (5, 2, 5)
    restored = other.state_dict()["items"]
    assert len(restored) == 5 and all(same_sample(a, b) for a, b in zip(restored, saved_items))
    assert restored[3][1].dtype == dtypes[0] and restored[3][2].dtype == dtypes[1]
    for a, b in zip(other.get(2), buffer.get(2)):  # the same next draws
        assert same_sample(a, b)
    assert same_state(fresh.model.state_dict(), trainer.model.state_dict())
    assert same_state(fresh.optimizer.state_dict(), trainer.optimizer.state_dict())


def test_numpy_scalars_and_odd_arrays_survive_bit_for_bit():
    values = [np.float32(np.nan), np.int64(-3), np.bool_(True), np.arange(6, dtype=">f8").reshape(2, 3),
              np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2], np.zeros((0, 4), np.float32), 5, "name"]
    back = ckpt.decode_numpy(ckpt.encode_numpy({"v": tuple(values)}))["v"]
    assert isinstance(back, tuple) and len(back) == len(values)
    for a, b in zip(values, back):
        assert type(a) is type(b)
        if isinstance(a, (np.ndarray, np.generic)):
            assert a.dtype == b.dtype and np.shape(a) == np.shape(b) and a.tobytes() == b.tobytes()
        else:
            assert a == b


def test_posterior_estimator_state_loads_safely(tmp_path):
    from models.sbi import NPE, BoxUniform, NPEConfig

    trainer, buffer, _ = tiny_worker_state(tmp_path)
    prior = BoxUniform([-2.0], [2.0])
    g = torch.Generator().manual_seed(5)
    npe = NPE(prior, NPEConfig(norm_warmup_steps=1))
    for _ in range(3):
        theta = prior.sample(8, g)
        npe.train_step(theta, torch.cat([theta, theta ** 2], 1))
    path = ckpt.save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {}, inference=npe)
    assert torch.load(path, weights_only=True)["inference"]["step"] == 3  # every part loads safely
    other = NPE(prior, NPEConfig(norm_warmup_steps=1))
    other.load_state_dict(ckpt.load_checkpoint(path)["inference"])
    assert other.step == npe.step == 3
    assert same_state(other.net.state_dict(), npe.net.state_dict())


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle-2", "pickle-5"])
def test_planted_checkpoint_that_runs_code_is_refused(tmp_path, writer):
    marker, path = tmp_path / "code_ran", tmp_path / "worker_ckpt.pt"
    state = {"format": ckpt.FORMAT, "trainer": RunsCode(marker), "counters": {}}
    if writer == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state, protocol=int(writer[-1])))
    with pytest.raises(RuntimeError) as info:
        ckpt.load_checkpoint(path)
    assert not marker.exists(), "unpickling the checkpoint ran the planted command"
    message = str(info.value)
    assert message.startswith(f"worker checkpoint {path} ") and "remove it to start afresh" in message
    assert "weights_only` set to `False`" not in message  # torch's advice to turn the safe loader off is cut
    if writer != "pickle-5":  # protocol 5's framing stops the safe loader before it reaches the call
        assert f"{path} is refused: loading it would call posix.system, and only tensors and plain data" in message


def test_unreadable_checkpoint_is_named(tmp_path):
    bad = tmp_path / "ck.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"ck.pt cannot be read"):
        ckpt.load_checkpoint(bad)


def test_no_production_code_unpickles_with_weights_only_false():
    repo = Path(__file__).resolve().parents[2]
    hits = [f"{p}:{n}" for d in ("bridge", "models") for p in sorted((repo / d).rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if "weights_only=False" in line.replace(" ", "")]
    assert hits == []


# --------------------------------------------------------------------------- failed writes
def dying_save(exc):
    def save(obj, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise exc
    return save


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    trainer, buffer, _ = tiny_worker_state(tmp_path)
    path = ckpt.save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {"received": 1})
    good = path.read_bytes()
    monkeypatch.setattr(ckpt.torch, "save", dying_save(KeyboardInterrupt("killed during the write")))
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, trainer, buffer, {"received": 2})
    assert path.read_bytes() == good
    assert ckpt.load_checkpoint(path)["counters"] == {"received": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left behind


@pytest.mark.parametrize("failure", ["ENOSPC", "iostream"])
def test_full_disk_names_the_file_and_the_cause(tmp_path, monkeypatch, failure):
    import models.ncio as ncio

    trainer, buffer, _ = tiny_worker_state(tmp_path)
    path = ckpt.save_checkpoint(tmp_path / "worker_ckpt.pt", trainer, buffer, {"received": 1})
    if failure == "ENOSPC":
        exc = OSError(errno.ENOSPC, "No space left on device")
    else:  # what torch.save says on a full disk; the free space, made to look exhausted, tells why
        exc = RuntimeError("basic_ios::clear: iostream error")
        monkeypatch.setattr(ncio, "LOW_SPACE", 1 << 62)
    monkeypatch.setattr(ckpt.torch, "save", dying_save(exc))
    with pytest.raises(WriteError) as info:
        ckpt.save_checkpoint(path, trainer, buffer, {"received": 2})
    message = str(info.value)
    assert message.startswith(f"cannot write {path}: no space left on device (")
    assert f" bytes free in {tmp_path})" in message and "the previous worker_ckpt.pt is intact" in message
    if failure == "iostream":
        assert "RuntimeError: basic_ios::clear: iostream error" in message
    else:
        assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["counters"] == {"received": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["worker_ckpt.pt"]


def test_other_write_failures_name_the_file_and_the_error(tmp_path):
    def write(tmp):
        Path(tmp).write_bytes(b"partial")
        raise ValueError("bad field")

    with pytest.raises(WriteError, match=rf"^cannot write {tmp_path}/out.nc: ValueError: bad field$"):
        atomic_write(tmp_path / "out.nc", write)
    assert list(tmp_path.iterdir()) == []


def runtime_for(path: Path, trainer, buffer, training_thread_alive: bool):
    import threading

    from bridge.worker.records import Counters
    from bridge.worker.runtime import Runtime

    rt = Runtime.__new__(Runtime)
    rt.checkpoint, rt.buffer, rt.counters, rt.parts = path, buffer, Counters(last_step=30), {}
    rt.engine = SimpleNamespace(trainer=trainer, inference=None)
    rt.learner = SimpleNamespace(lock=threading.Lock(), is_alive=lambda: training_thread_alive)
    return rt


def test_failed_periodic_checkpoint_is_logged_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    trainer, buffer, _ = tiny_worker_state(tmp_path)
    path = ckpt.save_checkpoint(tmp_path / "worker_ckpt.pt", trainer, buffer, {"received": 1})
    monkeypatch.setattr(ckpt.torch, "save", dying_save(OSError(errno.ENOSPC, "No space left on device")))
    with caplog.at_level(logging.ERROR):
        runtime_for(path, trainer, buffer, training_thread_alive=True).save()  # periodic: no exception
    assert "periodic checkpoint at step 30 not written, the run goes on" in caplog.text
    assert f"cannot write {path}: no space left on device" in caplog.text
    with pytest.raises(WriteError, match=f"cannot write {path}: no space left on device"):
        runtime_for(path, trainer, buffer, training_thread_alive=False).save()  # the final one fails the run
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["counters"] == {"received": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["worker_ckpt.pt"]


# --------------------------------------------------------------------------- hygiene
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temp_files_of_killed_writers_are_removed(tmp_path):
    target = tmp_path / "worker_ckpt.pt"
    stale = tmp_path / f".worker_ckpt.pt.{HOST}.{dead_pid()}.k1ll3d.tmp"
    live = tmp_path / f".worker_ckpt.pt.{HOST}.{os.getppid()}.wr1t1n.tmp"  # a live process still writing
    elsewhere = tmp_path / f".worker_ckpt.pt.{HOST}x.{dead_pid()}.0th3r.tmp"  # another host's pid
    other_target = tmp_path / f".ensemble.nc.{HOST}.{dead_pid()}.abcd.tmp"  # cleaned when ensemble.nc is written
    for p in (stale, live, elsewhere, other_target):
        p.touch()
    names = []
    atomic_write(target, lambda tmp: (names.append(Path(tmp).name), Path(tmp).write_bytes(b"data")))
    assert target.read_bytes() == b"data"
    assert names[0].startswith(f".worker_ckpt.pt.{HOST}.{os.getpid()}.") and names[0].endswith(".tmp")
    assert not stale.exists() and live.exists() and elsewhere.exists() and other_target.exists()


def test_temp_file_of_a_writer_killed_mid_write_goes_at_the_next_write(tmp_path):
    import signal
    import sys

    target = tmp_path / "worker_ckpt.pt"
    code = ("import sys, time; from models.ncio import atomic_write; "
            "atomic_write(sys.argv[1], lambda tmp: (print(tmp, flush=True), time.sleep(120)))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    left = Path(proc.stdout.readline().strip())  # the writer is inside its write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert left.parent == tmp_path and left.is_file() and left.stat().st_size == 0  # what a kill leaves
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"data"))
    assert [p.name for p in tmp_path.iterdir()] == ["worker_ckpt.pt"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from bridge.partition import BoxPartition
    from bridge.worker.output import write_ensemble_stats

    trainer, buffer, _ = tiny_worker_state(tmp_path)
    old = os.umask(umask)
    try:
        ck = ckpt.save_checkpoint(tmp_path / "worker_ckpt.pt", trainer, buffer, {})
        nc = write_ensemble_stats(tmp_path / "ensemble.nc", ["ssh"], [1, 2], np.zeros((2, 2, 1, 8, 8), np.float32),
                                  [0.5], BoxPartition(8, 8, 0, 0, 8, 8), 1.0, 1.0, 60.0, np.ones((8, 8), "i1"))
    finally:
        os.umask(old)
    assert (ck.stat().st_mode & 0o777, nc.stat().st_mode & 0o777) == (mode, mode)


# --------------------------------------------------------------------------- capacity changed on resume
def restored_with(tmp_path, capacity, kind="reservoir"):
    trainer, buffer, settings = tiny_worker_state(tmp_path, kind=kind)
    before = buffer.state_dict()
    path = ckpt.save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {})
    fresh, other = fresh_parts(settings, capacity=capacity, kind=kind)
    ckpt.restore(ckpt.load_checkpoint(path), fresh, other)
    return before, other


def test_larger_capacity_on_resume_applies_and_keeps_every_sample(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        before, buf = restored_with(tmp_path, capacity=20)
    assert buf.config.capacity == 20 and len(buf) == 5
    assert all(same_sample(a, b) for a, b in zip(buf.state_dict()["items"], before["items"]))
    assert "reservoir buffer capacity 8 -> 20: every one of its 5 sample(s) kept" in caplog.text
    for k in range(15):  # room for 15 more without losing one
        assert buf.put((k, np.zeros(1, np.float32), np.zeros((1, 8, 8), np.float32), np.zeros((1, 8, 8), np.float32)))
    assert len(buf) == 20 and (buf.n_dropped, buf.n_evicted) == (0, 0)


@pytest.mark.parametrize("capacity, evicted, dropped", [(3, 2, 0), (2, 2, 1)])
def test_smaller_reservoir_on_resume_drops_served_samples_first(tmp_path, caplog, capacity, evicted, dropped):
    with caplog.at_level(logging.WARNING):
        before, buf = restored_with(tmp_path, capacity=capacity)
    seen = before["seen"]
    unseen = [s for s, n in zip(before["items"], seen) if n == 0]
    assert sum(n > 0 for n in seen) == 2 and len(unseen) == 3
    kept = buf.state_dict()
    assert buf.config.capacity == capacity and len(buf) == capacity
    assert (buf.n_evicted, buf.n_dropped) == (evicted, dropped)
    assert all(n == 0 for n in kept["seen"]) and kept["served"] == []
    assert all(any(same_sample(k, u) for u in unseen) for k in kept["items"])  # only never-served ones kept
    assert buf.n_put == buf.n_dropped + buf.n_evicted + len(buf)  # the buffer's invariant still holds
    assert (f"reservoir buffer capacity 8 -> {capacity}: {5 - capacity} sample(s) dropped to fit "
            f"({dropped} never served), {capacity} kept") in caplog.text


def test_smaller_fifo_on_resume_keeps_the_most_recent(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        before, buf = restored_with(tmp_path, capacity=2, kind="fifo")
    assert len(before["items"]) == 3  # 5 put, the 2 oldest served by the training step
    kept = buf.state_dict()["items"]
    assert [s[0] for s in kept] == [3, 4] and all(same_sample(a, b) for a, b in zip(kept, before["items"][1:]))
    assert (buf.config.capacity, buf.n_dropped, buf.n_got, buf.n_put) == (2, 1, 2, 5)
    assert "fifo buffer capacity 8 -> 2: 1 sample(s) dropped to fit (1 never served), 2 kept" in caplog.text


def test_smaller_firo_on_resume_drops_random_samples(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        before, buf = restored_with(tmp_path, capacity=2, kind="firo")
    kept = buf.state_dict()["items"]
    assert len(before["items"]) == 3 and len(kept) == 2
    assert all(sum(same_sample(k, b) for b in before["items"]) == 1 for k in kept)  # a subset, no duplicate
    assert buf.n_put == buf.n_dropped + buf.n_got + len(buf) and buf.n_dropped == 1
    assert "firo buffer capacity 8 -> 2: 1 sample(s) dropped to fit (1 never served), 2 kept" in caplog.text

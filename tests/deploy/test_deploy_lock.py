"""The run-folder lock: one oceanbridge job (or preprod) per run folder at a time (deploy/runlock.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import deploy.commands as cli
from deploy.commands import launch_main, preprod_main
from deploy.runlock import LOCK_NAME, RunFolderLocked, lock_holder, run_folder_lock

REPO = Path(__file__).resolve().parents[2]
HOLDER = """\
import sys
from pathlib import Path
from deploy.runlock import run_folder_lock
with run_folder_lock(Path(sys.argv[1]), "oceanbridge launch other.toml"):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tree):
    """Another process holding the lock of tree/run until it is killed or its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tree / "run")], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == "held\n"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def _expect_refusal(err: str, tree: Path, proc: subprocess.Popen) -> None:
    lock = tree / "run" / LOCK_NAME
    assert f"run folder {tree / 'run'} is in use by another oceanbridge process" in err
    assert f"pid {proc.pid}, host {socket.gethostname()}, started 20" in err
    assert f"(oceanbridge launch other.toml) holds the lock {lock}" in err
    assert f"Wait for that job to end, or stop it (kill {proc.pid} on {socket.gethostname()})" in err
    assert "or give this config another [run] run_dir" in err


def test_second_launch_is_refused_at_once(write_config, tree, holder, capsys):
    path = write_config()
    start = time.monotonic()
    assert launch_main(["--launcher", "mpirun", str(path)]) == 1
    assert time.monotonic() - start < 10  # no waiting on the lock
    err = capsys.readouterr().err
    assert err.startswith("oceanbridge launch: error: run folder ")
    _expect_refusal(err, tree, holder)


def test_preprod_is_refused_under_a_running_job(write_config, tree, holder, capsys):
    path = write_config()
    assert preprod_main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("oceanbridge preprod: error: run folder ")
    _expect_refusal(err, tree, holder)
    assert not (tree / "run" / "namelist_cfg").exists()  # nothing was rewritten


def test_launch_check_reports_the_lock(write_config, tree, holder, capsys):
    path = write_config()
    assert launch_main(["--check", "--launcher", "mpirun", str(path)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "in use by another" in line]
    assert len(lines) == 1 and lines[0].startswith("oceanbridge launch: not ready: run folder ")
    _expect_refusal(lines[0], tree, holder)


def test_lock_file_names_its_holder(tree, holder):
    text = (tree / "run" / LOCK_NAME).read_text()
    assert text.splitlines()[:2] == [f"pid: {holder.pid}", f"host: {socket.gethostname()}"]
    assert text.splitlines()[3] == "command: oceanbridge launch other.toml"


def test_lock_is_free_again_after_sigkill(write_config, tree, holder, capsys):
    path = write_config()
    assert preprod_main([str(path)]) == 1
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    assert lock_holder(tree / "run") is None
    assert preprod_main([str(path)]) == 0
    assert f"wrote {tree / 'run' / 'namelist_cfg'}" in capsys.readouterr().out


def test_lock_is_free_again_after_a_clean_exit(tree, holder):
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    with run_folder_lock(tree / "run", "oceanbridge launch cfg.toml") as lock:
        assert lock == tree / "run" / LOCK_NAME
        assert lock.read_text().splitlines()[0] == f"pid: {os.getpid()}"


def test_launch_holds_the_lock_during_the_job(write_config, tree, monkeypatch, capsys):
    """run_job runs inside the lock: a second lock of the folder fails while the job runs."""
    path = write_config()
    assert preprod_main([str(path)]) == 0
    seen = {}

    def fake_run_job(cmd, cwd, env=None):
        seen["holder"] = lock_holder(cwd)
        with pytest.raises(RunFolderLocked):
            with run_folder_lock(cwd, "second"):
                pass
        return 0

    monkeypatch.setattr(cli, "run_job", fake_run_job)
    monkeypatch.setattr(cli, "require_ready", lambda cfg, launcher: None)
    assert launch_main(["--launcher", "mpirun", str(path)]) == 0
    assert f"pid {os.getpid()}, host {socket.gethostname()}" in seen["holder"]
    assert f"(oceanbridge launch --launcher mpirun {path})" in seen["holder"]
    assert lock_holder(tree / "run") is None  # released when the job ends

"""The coupling settings are config keys (issue 19): ``[run] timeout``, ``put_mode``, ``put_ring``, ``wait_mode``,
``nan_policy`` parse and are validated naming the key; launch writes them into the job's environment as the
$OBRIDGE_* variables both sides read, and into the launch record; a shell exporting another value stops the
launch naming both; the worker's two other waits have names of their own; one default per setting, which the
Python readers and the Fortran side fall back to."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bridge.config.config import RunSection
from bridge.transport import env as coupling
from deploy import commands as cli
from deploy.commands import launch_main, preprod_main
from deploy.launch import LAUNCH_RECORD, preflight, shell_env_problems
from deploy.mpmd import job_env, mpirun_command, mpmd_apps
from deploy.slurm import render_script
from models.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]
OBRIDGE = [k for k in os.environ if k.startswith("OBRIDGE_")]
CHOSEN = {"timeout": 42.5, "put_mode": "direct", "put_ring": 7, "wait_mode": "yield", "nan_policy": "warn"}
CHOSEN_ENV = {"OBRIDGE_TIMEOUT": "42.5", "OBRIDGE_PUT_MODE": "direct", "OBRIDGE_RING": "7", "OBRIDGE_WAIT": "yield",
              "OBRIDGE_NAN_POLICY": "warn"}


@pytest.fixture(autouse=True)
def no_shell_settings(monkeypatch):
    """The tests decide which $OBRIDGE_* the launching environment holds."""
    for name in OBRIDGE:
        monkeypatch.delenv(name)


# ---- the keys ----


def test_every_key_parses_and_reaches_the_job_environment(make_config):
    cfg = make_config(run=CHOSEN)
    assert {key: getattr(cfg.run, key) for key in CHOSEN} == CHOSEN
    assert job_env(cfg) == CHOSEN_ENV  # mpi backend: no time axis


def test_defaults_come_from_the_one_table(make_config):
    cfg = make_config(run={"timeout": None})  # the fixture sets 60 s
    for s in coupling.COUPLING:
        assert getattr(cfg.run, s.key) == s.default
        assert RunSection.__dataclass_fields__[s.key].default == s.default
        assert RunSection.__dataclass_fields__[s.key].metadata["choices"] == (s.choices or None)
    assert job_env(cfg) == {"OBRIDGE_TIMEOUT": "300.0", "OBRIDGE_PUT_MODE": "copy", "OBRIDGE_RING": "4",
                            "OBRIDGE_WAIT": "auto", "OBRIDGE_NAN_POLICY": "error"}


@pytest.mark.parametrize("key,value,message", [
    ("put_mode", "fast", "key 'put_mode' has invalid value 'fast' (allowed: 'copy', 'direct')"),
    ("put_mode", "Direct", "key 'put_mode' has invalid value 'Direct'"),
    ("put_ring", 0, "key 'put_ring' must be >= 1, got 0"),
    ("put_ring", 2.5, "key 'put_ring' must be an integer, got 2.5"),
    ("put_ring", "4", "key 'put_ring' must be an integer, got '4'"),
    ("wait_mode", "busy", "key 'wait_mode' has invalid value 'busy' (allowed: 'auto', 'spin', 'yield')"),
    ("nan_policy", "ignore", "key 'nan_policy' has invalid value 'ignore' (allowed: 'error', 'warn', 'off')"),
    ("timeout", 0, "key 'timeout' must be > 0, got 0.0"),
    ("timeout", "soon", "key 'timeout' must be a float, got 'soon'"),
    ("result_timeout", -1, "key 'result_timeout' must be > 0, got -1.0"),
    ("ranks_timeout", "late", "key 'ranks_timeout' must be a float, got 'late'"),
    ("ranks_timeout", float("inf"), "key 'ranks_timeout' must be a float, got inf"),
])
def test_a_bad_value_is_refused_naming_the_key(write_config, key, value, message):
    path = write_config(run={key: value})
    with pytest.raises(ConfigError) as err:
        cli.load_config(path)
    assert str(err.value).startswith(f"{path.resolve()}: [run] {message}")


@pytest.mark.parametrize("key", ["ring", "wait", "OBRIDGE_WAIT", "worker_timeout"])
def test_unknown_keys_still_raise(write_config, key):
    path = write_config(run={key: 4})
    with pytest.raises(ConfigError, match=rf"\[run\] unknown key '{key}' \(known keys: .*put_ring.*wait_mode"):
        cli.load_config(path)


# ---- the timeouts: one name per meaning ----


def test_the_worker_waits_default_to_the_coupling_timeout(make_config):
    run = make_config().run
    assert (run.timeout, run.result_timeout, run.ranks_timeout) == (60.0, None, None)
    assert run.result_timeout_s == run.ranks_timeout_s == 60.0
    run = make_config(run={"result_timeout": 900, "ranks_timeout": 30.0}).run
    assert (run.timeout, run.result_timeout_s, run.ranks_timeout_s) == (60.0, 900.0, 30.0)


def test_each_timeout_reaches_its_consumer(make_config, tmp_path):
    """[run] timeout: the ocean's namelist and the worker's component; result_timeout: the worker's wait for its
    emulated state (the emulate mode's handler); ranks_timeout: the band sampling's halo exchange (rank_band)."""
    pytest.importorskip("torch")
    from bridge.worker.cli import rank_band
    from bridge.worker.modes import EmulatedWanted, EmulateHandler
    from bridge.worker.runtime import Runtime
    from deploy.preprod import preprod
    cfg = make_config(run={"timeout": 61.0, "result_timeout": 62.0, "ranks_timeout": 63.0}, worker={"ranks": 2})
    preprod(cfg)
    assert "rn_obr_timeout = 61.0" in cfg.member_namelist(1).read_text()
    assert rank_band(cfg, 0, 2).exchange.timeout_s == 63.0

    asked = {}
    rt = Runtime.__new__(Runtime)  # only what the emulate handler's answer touches
    rt.cfg, rt.pending, rt.actual = cfg, {"gyre": (12, None)}, {}
    rt.counters = SimpleNamespace(emulated=0)
    rt.learner = SimpleNamespace(result=lambda key, timeout: asked.setdefault("timeout", timeout) and np.zeros((1, 2)))
    rt.tunnel = SimpleNamespace(timeout=61.0, send=lambda *args: None)
    EmulateHandler(rt).on_emulated_wanted(EmulatedWanted("gyre", 12, None))
    assert asked["timeout"] == 62.0


# ---- the launcher: job environment, shell conflicts, record ----


def test_every_program_gets_the_settings(make_config):
    """-x in each app context of the Open MPI line (remote nodes too), export lines in the SLURM script."""
    cfg = make_config(run=CHOSEN, ocean={"members": 2})
    cmd = mpirun_command(cfg, cores=64)
    pairs = [f"{k}={v}" for k, v in CHOSEN_ENV.items()]
    for pair in pairs:
        assert cmd.count(pair) == len(mpmd_apps(cfg)) == 3
        assert cmd[cmd.index(pair) - 1] == "-x"
    script = render_script(cfg)
    assert "".join(f"export {pair}\n" for pair in pairs) in script


def test_oasis_adds_the_time_axis_after_the_settings(make_config):
    cfg = make_config(run={"backend": "oasis", "nit000": 721})
    assert list(job_env(cfg)) == ["OBRIDGE_TIMEOUT", "OBRIDGE_PUT_MODE", "OBRIDGE_RING", "OBRIDGE_WAIT",
                                  "OBRIDGE_NAN_POLICY", "OBRIDGE_DT", "OBRIDGE_NIT000"]


def test_a_conflicting_shell_variable_is_a_problem_naming_both(make_config):
    cfg = make_config(run=CHOSEN)
    assert shell_env_problems(cfg, {**CHOSEN_ENV, "PATH": "/bin"}) == []
    # the same values written as the readers accept them
    assert shell_env_problems(cfg, {"OBRIDGE_TIMEOUT": "42.50", "OBRIDGE_PUT_MODE": " Direct",
                                    "OBRIDGE_RING": "7", "OBRIDGE_WAIT": "YIELD"}) == []
    problems = shell_env_problems(cfg, {"OBRIDGE_WAIT": "spin", "OBRIDGE_RING": "four", "OBRIDGE_TIMEOUT": "300"})
    assert problems == [
        f"$OBRIDGE_TIMEOUT='300' is set in this environment but the config gives [run] timeout = 42.5, which the "
        f"launcher writes into the job as OBRIDGE_TIMEOUT=42.5: unset OBRIDGE_TIMEOUT (the config is the way to set "
        f"it), or set [run] timeout in {cfg.source}",
        f"$OBRIDGE_RING='four' is set in this environment but the config gives [run] put_ring = 7, which the "
        f"launcher writes into the job as OBRIDGE_RING=7: unset OBRIDGE_RING (the config is the way to set it), or "
        f"set [run] put_ring in {cfg.source}",
        f"$OBRIDGE_WAIT='spin' is set in this environment but the config gives [run] wait_mode = 'yield', which the "
        f"launcher writes into the job as OBRIDGE_WAIT=yield: unset OBRIDGE_WAIT (the config is the way to set it), "
        f"or set [run] wait_mode in {cfg.source}"]
    # with the mpi backend the launcher does not set the time axis: a shell's OBRIDGE_DT is not its business
    assert shell_env_problems(cfg, {"OBRIDGE_DT": "5"}) == []
    oasis = make_config(run={"backend": "oasis"})
    assert [p.split(" is set")[0] for p in shell_env_problems(oasis, {"OBRIDGE_DT": "5"})] == ["$OBRIDGE_DT='5'"]


def test_launch_stops_on_a_conflicting_shell_variable(write_config, monkeypatch, capsys):
    path = write_config(run={"nan_policy": "warn"})
    assert preprod_main([str(path)]) == 0
    started = []
    monkeypatch.setattr(cli, "run_job", lambda *args, **kw: started.append(args) or 0)
    monkeypatch.setenv("OBRIDGE_NAN_POLICY", "error")
    problem = "$OBRIDGE_NAN_POLICY='error' is set in this environment but the config gives [run] nan_policy = 'warn'"
    assert any(p.startswith(problem) for p in preflight(cli.load_config(path)))
    assert launch_main(["--launcher", "mpirun", str(path)]) == 1
    assert problem in capsys.readouterr().err
    assert launch_main(["--check", "--launcher", "mpirun", str(path)]) == 1
    assert f"oceanbridge launch: not ready: {problem}" in capsys.readouterr().err
    assert started == [] and not (path.parent / "run" / LAUNCH_RECORD).exists()
    monkeypatch.setenv("OBRIDGE_NAN_POLICY", "warn")  # the same value: no conflict
    assert not any("OBRIDGE_NAN_POLICY" in p for p in preflight(cli.load_config(path)))


def test_launch_gives_the_job_its_environment_and_records_the_settings(write_config, tree, monkeypatch):
    path = write_config(run={**CHOSEN, "result_timeout": 90.0})
    assert preprod_main([str(path)]) == 0
    seen = {}

    def fake_run_job(cmd, cwd, env=None):
        seen.update(cmd=cmd, env=env, record=(cwd / LAUNCH_RECORD).read_text())  # written before the job starts
        return 0

    monkeypatch.setattr(cli, "run_job", fake_run_job)
    monkeypatch.setattr(cli, "require_ready", lambda cfg, launcher: None)
    assert launch_main(["--launcher", "mpirun", str(path)]) == 0
    assert seen["env"] == CHOSEN_ENV
    record = json.loads(seen["record"])
    assert record["run"] == {"backend": "mpi", "dt": 1200.0, "nit000": 1, "steps": 720, "timeout": 42.5,
                             "result_timeout": 90.0, "ranks_timeout": 42.5, "stop_grace": 10, "put_mode": "direct",
                             "put_ring": 7, "wait_mode": "yield", "nan_policy": "warn"}
    assert record["environment"] == CHOSEN_ENV
    assert record["config"] == str(path.resolve()) and record["job_command"] == seen["cmd"]
    assert record["command"] == f"oceanbridge launch --launcher mpirun {path}" and record["pid"] == os.getpid()
    # a relaunch (resume) appends its own line
    assert launch_main(["--launcher", "mpirun", str(path)]) == 0
    lines = (tree / "run" / LAUNCH_RECORD).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["run"] == record["run"]


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpirun")
def test_a_real_launch_hands_every_program_the_config_values(write_config, tree):
    """Real mpirun, stand-in programs that write out their $OBRIDGE_* (members in member_k, worker in run_dir)."""
    dump = "#!/bin/sh\nenv | grep '^OBRIDGE_' | sort > \"env.$OMPI_COMM_WORLD_RANK\"\n"
    exe, worker = tree / "bin" / "gyre.exe", tree / "bin" / "worker.sh"
    exe.write_text(dump)
    worker.write_text(dump)
    worker.chmod(0o755)
    path = write_config(run=CHOSEN, ocean={"members": 2, "ranks": 1}, worker={"python": str(worker)})
    assert preprod_main([str(path)]) == 0
    assert launch_main(["--launcher", "mpirun", str(path)]) == 0
    want = "".join(f"{k}={v}\n" for k, v in sorted(CHOSEN_ENV.items()))
    run = tree / "run"
    for got in (run / "member_1" / "env.0", run / "member_2" / "env.1", run / "env.2"):
        assert got.read_text() == want


# ---- one default per setting: the Python readers and the Fortran side fall back to it ----


def _readers(**env) -> dict:
    """What the Python readers take from ``env`` (nothing else of $OBRIDGE_*), in a fresh interpreter."""
    code = ("import json, bridge.transport.mpi as m, bridge.transport.wait as w; print(json.dumps({"
            "'timeout': m.DEFAULT_TIMEOUT, 'put_mode': m.DEFAULT_PUT_MODE, 'put_ring': m.RING, "
            "'wait_mode': w.wait_mode(), 'nan_policy': m.DEFAULT_NAN_POLICY}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OBRIDGE_")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**clean, **env}, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_python_readers_fall_back_to_the_declared_defaults_and_take_the_launcher_values(make_config):
    declared = {s.key: RunSection.__dataclass_fields__[s.key].default for s in coupling.COUPLING}
    assert _readers() == declared
    assert _readers(**job_env(make_config(run=CHOSEN))) == CHOSEN


FORTRAN_DEFAULTS = {  # obr_core.F90 declaration -> (its initial value parsed, as a Python value)
    "timeout": (r"real\(dp\) :: core_timeout = ([0-9.]+)_dp", float),
    "put_ring": (r"integer :: core_ring = ([0-9]+)", int),
    "put_mode": (r"logical :: core_put_direct = \.(true|false)\.", lambda v: "direct" if v == "true" else "copy"),
    "nan_policy": (r"integer :: core_nan_policy = OBR_NAN_([A-Z]+)", str.lower),
    "wait_mode": (r"integer :: core_wait_mode = OBR_WAIT_([A-Z]+)", str.lower),
}
FORTRAN_CHOICES = {"put_mode": "PUT_MODES", "nan_policy": "NAN_POLICIES", "wait_mode": "WAIT_MODES"}


def test_fortran_fallbacks_equal_the_declared_defaults():
    source = (REPO / "bridge" / "fortran" / "obr_core.F90").read_text()
    for s in coupling.COUPLING:
        pattern, parse = FORTRAN_DEFAULTS[s.key]
        found = re.findall(pattern, source)
        assert len(found) == 1, pattern
        assert parse(found[0]) == RunSection.__dataclass_fields__[s.key].default, s.key
    host = (REPO / "bridge" / "fortran" / "obr_host_nml.F90").read_text()  # the hosts' rn_obr_timeout default
    assert float(re.search(r"rp_timeout_default = ([0-9.]+)_dp", host).group(1)) == \
        RunSection.__dataclass_fields__["timeout"].default
    for key, name in FORTRAN_CHOICES.items():  # the words the Fortran side accepts: the key's choices
        words = re.search(rf"{name}\(\d\) = \[([^\]]*)\]", source).group(1)
        assert sorted(w.strip(" '") for w in words.split(",")) == sorted(getattr(coupling, key.upper()).choices)


def test_python_reader_names_a_bad_nan_policy():
    """$OBRIDGE_NAN_POLICY is read by the Python side too now (the default of Component's nan_policy)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OBRIDGE_")}
    run = subprocess.run([sys.executable, "-c", "import bridge.transport.mpi"], capture_output=True, text=True,
                         cwd=REPO, env={**clean, "OBRIDGE_NAN_POLICY": "ignore"}, timeout=120)
    assert run.returncode != 0
    assert "OBRIDGE_NAN_POLICY='ignore': the NaN policy must be one of error, warn, off" in run.stderr

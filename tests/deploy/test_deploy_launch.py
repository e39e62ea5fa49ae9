"""MPMD commands (mpirun, srun), the SLURM script, preflight checks and the CLI verbs."""
from __future__ import annotations

import os
import shutil
import sys

import pytest

from bridge.mpirun import mpirun_prefix
from bridge.transport.oasis_env import OasisUnavailable, require_pyoasis
from deploy.commands import launch_main, preprod_main, slurm_main
from deploy.launch import PreflightError, preflight, require_ready
from deploy.mpmd import mpirun_command, multiprog_conf, srun_hetjob_command, srun_multiprog_command
from deploy.preprod import preprod
from deploy.slurm import render_script, write_slurm

PY = sys.executable  # the fixtures' [worker] python


@pytest.fixture
def ens(make_config):
    """K = 2 members x N = 3 ranks, M = 2 worker ranks."""
    return make_config(ocean={"members": 2, "ranks": 3}, worker={"ranks": 2})


def _worker(tree):
    return [PY, "-m", "deploy.cli", "worker", "--config", str(tree / "cfg.toml")]


def _flags(ranks: int, cores: int) -> list[str]:
    """The Open MPI flags of every oceanbridge launch (bridge.mpirun), for this machine's user, with the default
    [run] stop_grace."""
    return mpirun_prefix(ranks, cores=cores, stop_grace=10)[1:]


# the [run] coupling settings of the fixtures (timeout 60 s, the other keys at their defaults), as every program
# of the job gets them (tests/deploy/test_deploy_coupling_keys.py checks each key)
SETTINGS = ["-x", "OBRIDGE_TIMEOUT=60.0", "-x", "OBRIDGE_PUT_MODE=copy", "-x", "OBRIDGE_RING=4",
            "-x", "OBRIDGE_WAIT=auto", "-x", "OBRIDGE_NAN_POLICY=error"]


def test_mpirun_command_for_members_and_workers(ens, tree):
    run, exe = tree / "run", str(tree / "bin" / "gyre.exe")
    assert mpirun_command(ens, cores=64) == [
        "mpirun", *_flags(8, 64),
        "-np", "3", *SETTINGS, "-wdir", str(run / "member_1"), exe, ":",
        "-np", "3", *SETTINGS, "-wdir", str(run / "member_2"), exe, ":",
        "-np", "2", *SETTINGS, "-wdir", str(run), *_worker(tree)]


def test_mpirun_flags_only_when_needed(ens):
    assert "--oversubscribe" not in mpirun_command(ens, cores=8)
    assert "--oversubscribe" in mpirun_command(ens, cores=7)  # 8 ranks on 7 cores
    assert ("--allow-run-as-root" in mpirun_command(ens, cores=8)) == (os.geteuid() == 0)
    assert mpirun_command(ens, cores=2, openmpi=False)[:2] == ["mpirun", "-np"]


def test_ocean_that_outlives_its_worker_keeps_the_job_alive(make_config):
    cmd = mpirun_command(make_config(ocean={"required": False}), cores=64)
    i = cmd.index("orte_abort_on_non_zero_status")
    assert cmd[i - 1:i + 2] == ["--mca", "orte_abort_on_non_zero_status", "0"]
    assert "orte_abort_on_non_zero_status" not in mpirun_command(make_config(), cores=64)


def test_mpirun_args_and_ocean_args(make_config, tree):
    cfg = make_config(run={"mpirun": "mpiexec", "mpirun_args": ["-x", "LD_LIBRARY_PATH"]},
                      ocean={"args": ["croco.in"]})
    assert mpirun_command(cfg, cores=64, openmpi=False) == [
        "mpiexec", "-x", "LD_LIBRARY_PATH",
        "-np", "2", "-wdir", str(tree / "run"), str(tree / "bin" / "gyre.exe"), "croco.in", ":",
        "-np", "1", "-wdir", str(tree / "run"), *_worker(tree)]


def test_worker_python_defaults_to_this_interpreter(make_config):
    cfg = make_config(worker={"python": None})
    assert mpirun_command(cfg, cores=64)[-6] == sys.executable


def test_multiprog_file(ens, tree):
    run, exe = tree / "run", tree / "bin" / "gyre.exe"
    assert multiprog_conf(ens).splitlines()[1:] == [
        f"0-2 env -C {run / 'member_1'} {exe}",
        f"3-5 env -C {run / 'member_2'} {exe}",
        f"6-7 {PY} -m deploy.cli worker --config {tree / 'cfg.toml'}"]


def test_srun_commands(ens, tree):
    run = tree / "run"
    conf = run / "oceanbridge.multiprog"
    assert srun_multiprog_command(ens, conf) == [
        "srun", "--ntasks=8", "--cpus-per-task=4", "--gpus=2", f"--chdir={run}", "--multi-prog", str(conf)]
    exe = str(tree / "bin" / "gyre.exe")
    assert srun_hetjob_command(ens) == [
        "srun", "--het-group=0", f"--chdir={run / 'member_1'}", exe, ":",
        "--het-group=1", f"--chdir={run / 'member_2'}", exe, ":",
        "--het-group=2", f"--chdir={run}", *_worker(tree)]


def test_cpu_workers_ask_for_no_gpu(make_config, tree):
    cfg = make_config(worker={"device": "cpu"})
    conf = tree / "run" / "p.conf"
    assert "--gpus=2" not in srun_multiprog_command(cfg, conf)
    assert not any(a.startswith("--gpus") for a in srun_multiprog_command(cfg, conf))


def test_slurm_script_multiprog(ens, tree):
    run = tree / "run"
    assert render_script(ens) == f"""\
#!/bin/bash
# written by 'oceanbridge slurm {tree / 'cfg.toml'}' (multi-prog layout)
#SBATCH --job-name=oceanbridge
#SBATCH --time=01:00:00
#SBATCH --output={run}/oceanbridge-%j.out
#SBATCH --ntasks=8
#SBATCH --cpus-per-task=4
#SBATCH --gpus=2

export OBRIDGE_TIMEOUT=60.0
export OBRIDGE_PUT_MODE=copy
export OBRIDGE_RING=4
export OBRIDGE_WAIT=auto
export OBRIDGE_NAN_POLICY=error
set -euo pipefail
cd {run}

# stop now if the namcouple or namelists are stale against the config
{PY} -m deploy.cli launch --check --launcher srun {tree / 'cfg.toml'}

srun --ntasks=8 --cpus-per-task=4 --gpus=2 --chdir={run} --multi-prog {run}/oceanbridge.multiprog
"""


def test_slurm_script_hetjob(make_config, tree):
    cfg = make_config(ocean={"members": 2, "ranks": 3}, worker={"ranks": 2},
                      slurm={"layout": "hetjob", "partition": "gpu", "account": "ocean", "time": "02:00:00",
                             "gpus_per_worker": 1, "worker_cpus_per_task": 8,
                             "setup": ["module load openmpi", "source /opt/venv/bin/activate"]})
    header = [line for line in render_script(cfg).splitlines() if line.startswith("#SBATCH")]
    assert header == [
        "#SBATCH --job-name=oceanbridge", "#SBATCH --time=02:00:00",
        f"#SBATCH --output={tree / 'run'}/oceanbridge-%j.out", "#SBATCH --account=ocean",
        "#SBATCH --partition=gpu", "#SBATCH --ntasks=3", "#SBATCH --cpus-per-task=1",
        "#SBATCH hetjob",
        "#SBATCH --partition=gpu", "#SBATCH --ntasks=3", "#SBATCH --cpus-per-task=1",
        "#SBATCH hetjob",
        "#SBATCH --partition=gpu", "#SBATCH --ntasks=2", "#SBATCH --cpus-per-task=8", "#SBATCH --gpus-per-task=1"]
    body = render_script(cfg).splitlines()
    assert body.index("module load openmpi") < body.index("set -euo pipefail")
    assert body[-1].startswith("srun --het-group=0 ")


def test_write_slurm_files(ens, tree):
    written = write_slurm(ens)
    assert written == [tree / "run" / "oceanbridge.multiprog", tree / "run" / "oceanbridge.sbatch"]
    assert written[1].stat().st_mode & 0o777 == 0o755
    assert written[0].read_text() == multiprog_conf(ens)


def test_oasis_missing_names_oasis_dir_and_pyoasis(monkeypatch):
    monkeypatch.delenv("OASIS_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "pyoasis", None)  # import pyoasis -> ImportError
    with pytest.raises(OasisUnavailable) as err:
        require_pyoasis()
    text = str(err.value)
    assert "OASIS_DIR is not set" in text
    assert "cannot import pyoasis" in text
    assert "export PYTHONPATH=$OASIS_DIR/python:$PYTHONPATH" in text
    assert "export LD_LIBRARY_PATH=$OASIS_DIR/lib:$LD_LIBRARY_PATH" in text


def test_unrelated_pyoasis_is_rejected(monkeypatch, tmp_path):
    import types
    monkeypatch.setenv("OASIS_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pyoasis", types.ModuleType("pyoasis"))
    with pytest.raises(OasisUnavailable, match="has no Component: it is not OASIS3-MCT's pyoasis"):
        require_pyoasis()


def test_oasis_backend_without_oasis_fails_preflight(make_config, monkeypatch):
    monkeypatch.delenv("OASIS_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "pyoasis", None)
    cfg = make_config(run={"backend": "oasis"})
    preprod(cfg)
    with pytest.raises(PreflightError) as err:
        require_ready(cfg, "mpirun")
    assert "  - backend 'oasis': OASIS_DIR is not set\n" in str(err.value)
    assert "export OASIS_DIR=" in str(err.value)


def test_oasis_job_gets_the_time_axis(make_config, tree):
    """With OASIS every program learns dt and nit000 (OASIS counts seconds), by mpirun -x and in the script."""
    cfg = make_config(run={"backend": "oasis", "nit000": 721})
    cmd = mpirun_command(cfg, cores=64)
    assert cmd[cmd.index("OBRIDGE_DT=1200") - 1] == "-x" and "OBRIDGE_NIT000=721" in cmd
    # Open MPI gives -x to one app context only: every program (member, worker) carries its own
    assert cmd.count("OBRIDGE_DT=1200") == cmd.count("-np") == 2
    script = render_script(cfg)
    assert "export OBRIDGE_DT=1200\nexport OBRIDGE_NIT000=721\n" in script
    assert not any("OBRIDGE_DT" in arg or "OBRIDGE_NIT000" in arg for arg in mpirun_command(make_config(), cores=64))


def test_mpi_backend_never_touches_pyoasis(make_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyoasis", None)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    cfg = make_config(run={"mpirun": "sh"})
    preprod(cfg)
    assert preflight(cfg) == []


def test_preflight_lists_every_problem(make_config, tree):
    cfg = make_config(ocean={"executable": "bin/nope.exe"}, run={"mpirun": "no-such-mpirun"})
    problems = preflight(cfg)
    assert problems == [f"[ocean] executable {tree / 'bin' / 'nope.exe'} not found",
                        f"{tree / 'run' / 'namelist_cfg'}: missing; run 'oceanbridge preprod {cfg.source}'",
                        "launcher 'no-such-mpirun' not found on PATH"]


def test_preflight_names_a_worker_python_that_cannot_import_the_worker(make_config, tree):
    """A worker dying before it joins MPI would leave the ocean in MPI_Init for ever: caught before the launch."""
    fake = tree / "bin" / "python-without-oceanbridge"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'mpi4py'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    problems = preflight(make_config(worker={"python": str(fake)}))
    assert (f"[worker] python {fake} cannot import the worker (ModuleNotFoundError: No module named 'mpi4py'); "
            "install oceanbridge and mpi4py into that environment, or set [worker] python") in problems
    assert not any("[worker] python" in p for p in preflight(make_config()))


def test_cli_preprod_then_launch_dry_run(write_config, tree, capsys):
    path = write_config(ocean={"members": 2})
    assert preprod_main([str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"next: oceanbridge launch {path}"
    assert launch_main(["--check", "--launcher", "mpirun", str(path)]) == (0 if shutil.which("mpirun") else 1)
    if shutil.which("mpirun"):
        assert capsys.readouterr().out == f"{path}: ready to launch\n"
        assert launch_main(["--dry-run", "--launcher", "mpirun", str(path)]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith("mpirun ")
        assert f"-wdir {tree / 'run' / 'member_2'} {tree / 'bin' / 'gyre.exe'} : -np 1" in line


def test_cli_errors(write_config, tree, capsys):
    path = write_config(ocean={"rnaks": 3})
    assert preprod_main([str(path)]) == 2
    assert f"oceanbridge preprod: error: {path}: [ocean] unknown key 'rnaks'" in capsys.readouterr().err
    good = write_config(name="good.toml")
    assert launch_main(["--launcher", "mpirun", str(good)]) == 1  # preprod not run: nothing starts
    assert "oceanbridge launch: error: " in capsys.readouterr().err
    assert slurm_main([str(good)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"submit with: sbatch {tree / 'run' / 'oceanbridge.sbatch'}"


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpirun")
def test_launch_starts_every_program_in_its_folder(write_config, tree):
    """A real mpirun: stand-in programs record where they ran (members in member_k, worker in run_dir)."""
    exe = tree / "bin" / "gyre.exe"
    exe.write_text('#!/bin/sh\npwd > "where.$OMPI_COMM_WORLD_RANK"\n')
    worker = tree / "bin" / "worker.sh"
    worker.write_text('#!/bin/sh\necho "$@" > "worker.$OMPI_COMM_WORLD_RANK"\n')
    worker.chmod(0o755)
    path = write_config(ocean={"members": 2, "ranks": 1}, worker={"python": str(worker)})
    assert preprod_main([str(path)]) == 0
    assert launch_main(["--launcher", "mpirun", str(path)]) == 0
    run = tree / "run"
    assert (run / "member_1" / "where.0").read_text() == f"{run / 'member_1'}\n"
    assert (run / "member_2" / "where.1").read_text() == f"{run / 'member_2'}\n"
    assert (run / "worker.2").read_text() == f"-m deploy.cli worker --config {path}\n"

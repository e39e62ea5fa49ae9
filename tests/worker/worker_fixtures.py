"""Small coupled runs for the worker tests: a deploy config on a tiny gyre, preprod, launch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BUILD", REPO / "build"))

# gyre values the deploy config cannot express: output frequencies, a small basin
TEMPLATE = """&namrun
   nn_write = {write}
   nn_diag  = {write}
   nn_stock = 0
   nn_print = 1000
   ln_rstart = {rstart}
   cn_ocerst_in = '{restart}'
/
&namdom
   rn_dx = 30000.0
   rn_dy = 30000.0
/
"""


def fields_toml(names=("ssh", "u", "v", "temp"), freq: int = 4, emulate: bool = False, spinup: bool = False) -> str:
    rows = []
    for n in names:
        rows.append(f'[[fields]]\nname = "{n}"\ndirection = "ocean_to_worker"\nfreq = {freq}\n')
        if emulate:
            rows.append(f'[[fields]]\nname = "{n}_emu"\ndirection = "worker_to_ocean"\nfreq = {freq}\n')
        if spinup:
            rows.append(f'[[fields]]\nname = "{n}_init"\ndirection = "worker_to_ocean"\nfreq = 1\n')
    return "\n".join(rows)


def write_config(run_dir: Path, *, steps: int = 80, freq: int = 4, n: int = 32, members: int = 1,
                 modes=("train",), worker_ranks: int = 1, required: bool = True, timeout: float = 60.0,
                 emulate: bool = False, extra: str = "", nit000: int = 1, restart: str = "",
                 ocean_ranks: int = 1, parameters: bool = True, ocean_args: tuple[str, ...] = (), spinup: bool = False) -> Path:
    """A deploy config (and its namelist template) in ``run_dir``; returns the config path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "template_cfg").write_text(TEMPLATE.format(write=freq, rstart=".true." if restart else ".false.",
                                                          restart=restart or "none"))
    params = """
[[parameters]]
name = "tau0"
block = "namphys"
var = "rn_tau0"
low = 0.1
high = 0.15
units = "N m-2"
""" if parameters else ""
    text = f"""
[run]
run_dir = "."
dt = 1200.0
nit000 = {nit000}
steps = {steps}
timeout = {timeout}
stop_grace = 3

[ocean]
model = "gyre"
executable = "{sys.executable if ocean_args else BUILD / 'bin' / 'gyre.exe'}"
args = {list(ocean_args)!r}
ranks = {ocean_ranks}
members = {members}
nx = {n}
ny = {n}
namelist = "template_cfg"
namelist_ref = "{REPO / 'gyre' / 'cfg' / 'namelist_ref'}"
required = {'true' if required else 'false'}

[worker]
ranks = {worker_ranks}
modes = {list(modes)!r}
device = "cpu"
python = "{sys.executable}"
args = ["--no-progress"]

[worker.train]
batch_size = 4
norm_warmup_steps = 5
lr_warmup_steps = 5
log_every = 10

[worker.buffer]
kind = "reservoir"
capacity = 64
watermark = 4

[model]
model_channels = 8
levels = 2
dx = 30000.0
dy = 30000.0
{extra}
{params}
{fields_toml(freq=freq, emulate=emulate, spinup=spinup)}
""".replace("'", '"')
    path = run_dir / "deploy.toml"
    path.write_text(text)
    return path


def launch(config: Path, timeout: float = 240, env: dict | None = None, popen: bool = False):
    """preprod, then the MPMD job of the config (output: stdout + stderr)."""
    from bridge.config.config import load_config
    from deploy.launch import build_command
    from deploy.preprod import preprod

    cfg = load_config(config)
    preprod(cfg)
    cmd = build_command(cfg, "mpirun")
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMPI_MCA_mpi_yield_when_idle": "1",
                "OMP_NUM_THREADS": "1", **(env or {})}
    if popen:
        return subprocess.Popen(cmd, cwd=cfg.run.run_dir, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        return subprocess.run(cmd, cwd=cfg.run.run_dir, env=full_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"coupled job hung for more than {timeout} s: {' '.join(cmd)}\n{exc.output}") from None

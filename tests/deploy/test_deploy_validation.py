"""preprod and launch validate every section of the config before any rank starts: the worker's own
sections ([worker.*], [model]) without importing torch, the grid against the rank counts, and a CROCO
build's param.h decomposition against [ocean] ranks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.commands import launch_main, preprod_main
from deploy.croco_param import decomposition
from deploy.launch import preflight
from models.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]
TYPO = {"ranks": 1, "modes": ["train"], "python": sys.executable, "train": {"bach_size": 4}}
VERBS = [("preprod", lambda path: preprod_main([str(path)])),
         ("launch", lambda path: launch_main(["--check", "--launcher", "mpirun", str(path)])),
         ("launch", lambda path: launch_main(["--dry-run", "--launcher", "mpirun", str(path)])),
         ("launch", lambda path: launch_main(["--launcher", "mpirun", str(path)]))]


@pytest.mark.parametrize("verb, run", VERBS)
def test_typo_in_worker_train_stops_preprod_and_launch(write_config, tree, capsys, verb, run):
    path = write_config(worker=TYPO)
    assert run(path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"oceanbridge {verb}: error: {path}: [worker.train] unknown key 'bach_size' (known keys: ")
    assert "batch_size" in err
    assert not (tree / "run").exists()  # nothing written, nothing started


@pytest.mark.parametrize("verb, run", VERBS[:2])
def test_wrong_type_in_model_stops_preprod_and_launch(write_config, capsys, verb, run):
    path = write_config(model={"model_channels": "wide"})
    assert run(path) == 2
    assert (f"oceanbridge {verb}: error: {path}: [model] key 'model_channels' must be an integer, got 'wide'"
            in capsys.readouterr().err)


def test_validating_the_worker_sections_imports_no_torch(write_config):
    bad = write_config(worker=TYPO)
    good = write_config(name="good.toml", worker={**TYPO, "train": {"batch_size": 4}}, model={"levels": 3})
    code = ("import sys; from deploy.commands import preprod_main; "
            f"print(preprod_main([{str(bad)!r}]), preprod_main([{str(good)!r}]), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-3:] == ["2", "0", "False"], out.stderr


def test_more_worker_ranks_than_rows_names_both_keys(make_config, tree):
    with pytest.raises(ConfigError) as err:
        make_config(ocean={"ny": 3}, worker={"ranks": 4})
    assert str(err.value) == (
        f"{tree / 'cfg.toml'}: [worker] key 'ranks' = 4 but [ocean] ny = 3: the worker splits the ny rows of the "
        "grid among its ranks, one row at least each (cannot split 3 points into 4 parts); set [worker] ranks "
        "<= 3, or use a larger grid")
    assert make_config(ocean={"ny": 4}, worker={"ranks": 4}).worker.ranks == 4


def test_more_ocean_ranks_than_points_names_the_keys(make_config, tree):
    with pytest.raises(ConfigError) as err:
        make_config(ocean={"nx": 2, "ny": 3, "ranks": 7})
    assert str(err.value) == (
        f"{tree / 'cfg.toml'}: [ocean] key 'ranks' = 7 but [ocean] nx x ny = 2 x 3 is only 6 points, one at "
        "least per rank; set [ocean] ranks <= 6, or use a larger grid")


# ---- CROCO: param.h against [ocean] ranks ----

PARAM_H = """\
      integer NSUB_X, NSUB_E, NPP
#ifdef MPI
! oceanbridge param-decomposition: MPI decomposition NP_XI x NP_ETA (install --np-xi --np-eta)
#ifdef OBRIDGE
# undef  SPLITTING_X
# undef  SPLITTING_ETA
# define SPLITTING_X 2
# define SPLITTING_ETA 1
#endif
      integer NP_XI, NP_ETA, NNODES
#if defined(SPLITTING_X) && defined(SPLITTING_ETA)
      parameter (NP_XI=SPLITTING_X,  NP_ETA=SPLITTING_ETA,  NNODES=NP_XI*NP_ETA)
#else
      parameter (NP_XI=1,  NP_ETA=4,  NNODES=NP_XI*NP_ETA)
#endif
      parameter (NPP=1)
#elif defined OPENMP
# if defined(SPLITTING_X) && defined(SPLITTING_ETA)
      parameter (NPP=SPLITTING_X*SPLITTING_ETA)
# else
      parameter (NPP=4)
# endif
#else
      parameter (NPP=1)
#endif
"""
OBRIDGE_BLOCK = PARAM_H[PARAM_H.index("! oceanbridge"):PARAM_H.index("      integer NP_XI")]
UNPATCHED = PARAM_H.replace(OBRIDGE_BLOCK, "")  # CROCO's own param.h


@pytest.fixture
def croco(tree, write_config):
    """A CROCO build folder (croco + param.h of a 2 x 1 build) and croco_config(ranks, param_h)."""
    build = tree / "croco_run"
    build.mkdir()
    (build / "croco").write_text("#!/bin/sh\nexit 0\n")
    (build / "croco").chmod(0o755)

    def croco_config(ranks: int, param_h: str | None = PARAM_H) -> Path:
        if param_h is not None:
            (build / "param.h").write_text(param_h)
        return write_config(ocean={"model": "croco", "executable": str(build / "croco"), "ranks": ranks,
                                   "nx": 60, "ny": 50, "namelist": None, "namelist_ref": None})
    return croco_config


def _croco_problems(path: Path) -> list[str]:
    from bridge.config.config import load_config
    return [p for p in preflight(load_config(path)) if "NP_XI" in p]


def test_croco_ranks_against_param_h(croco, tree, capsys):
    path = croco(1)
    param = tree / "croco_run" / "param.h"
    assert _croco_problems(path) == [
        f"[ocean] ranks = 1 but {param} builds CROCO for NP_XI x NP_ETA = 2 x 1 = 2 ranks, so CROCO would stop "
        f"at start: set [ocean] ranks = 2 in {path}, or rebuild CROCO for 1 rank(s) (oceanbridge install croco "
        "--np-xi X --np-eta Y with X*Y = 1, then ./jobcomp)"]
    assert launch_main(["--check", "--launcher", "mpirun", str(path)]) == 1
    assert f"oceanbridge launch: not ready: [ocean] ranks = 1 but {param} builds" in capsys.readouterr().err
    assert _croco_problems(croco(2)) == []


@pytest.mark.parametrize("param_h", [UNPATCHED, None, "      parameter (NP_XI=NPX, NP_ETA=1)\n"])
def test_croco_param_h_unknown_says_nothing(croco, param_h):
    assert _croco_problems(croco(1, param_h)) == []


@pytest.mark.parametrize("text, expected", [
    (PARAM_H, (2, 1)),
    (UNPATCHED, None),  # SPLITTING_X may come from cppdefs.h: unknown
    ("#ifdef MPI\n      parameter (NP_XI=3, NP_ETA=2, NNODES=NP_XI*NP_ETA)\n#endif\n", (3, 2)),
    ("#ifndef MPI\n      parameter (NP_XI=3, NP_ETA=2)\n#else\n      PARAMETER (np_xi=1, np_eta=4)\n#endif\n", (1, 4)),
    ("#ifdef BASIN\n      parameter (NP_XI=3, NP_ETA=2)\n#else\n      parameter (NP_XI=1, NP_ETA=2)\n#endif\n", None),
    ("# define NX 4\n#if !defined(NX) || (1 && defined MPI)\n      parameter (NP_XI=NX, NP_ETA=2)\n#endif\n",
     (4, 2)),
    ("#if defined(OPENMP) || defined MPI\n      parameter (NP_XI=1, NP_ETA=2)\n#endif\n", None),  # OPENMP?
    ("#undef OPENMP\n#ifdef OPENMP\n      parameter (NP_XI=3, NP_ETA=2)\n#elif 1\n"
     "      parameter (NP_XI=1, NP_ETA=2)\n#endif\n", (1, 2)),
    ('#include "cppdefs.h"\n      parameter (NP_XI=1, NP_ETA=2)\n', None),
    ("      parameter (NP_XI=1, NP_ETA=2)\n      parameter (NP_XI=2, NP_ETA=2)\n", None),
    ("#ifdef MPI\n      parameter (NP_XI=1, NP_ETA=2)\n", None),  # unbalanced #if
    ("      integer NSUB_X\n", None),
])
def test_param_h_decomposition(text, expected):
    assert decomposition(text) == expected


@pytest.mark.timeout(20)
def test_param_h_condition_with_long_names_and_an_unknown_operator_is_fast():
    """A word must be one token: CROCO's real BASIN param.h has '#if' lines with long macro names and
    operators outside the supported set (==, >), on which the earlier token pattern backtracked for ever
    and hung `oceanbridge launch` in its preflight (found on the real CROCO v2.1.3 build)."""
    text = ("#if defined(AAAAAAAAAAAAAAAAAAAAAAAA) && BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB == 1\n"
            "      parameter (NP_XI=3, NP_ETA=2)\n#endif\n")
    assert decomposition(text) is None  # an unknown condition: nothing is claimed

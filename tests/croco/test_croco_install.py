"""``oceanbridge install croco`` on a synthetic CROCO tree (no CROCO needed).

The synthetic OCEAN/ folder holds, for every file the table patches, filler
lines and each anchor of croco_patches/patches.toml once, so the tests follow
the table. The real tree is covered by test_croco_run.py (marker ``croco``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import f90nml
import pytest

from bridge.config.namelist import check_switches
from deploy.install import croco
from deploy.install.patching import find_blocks, load_table

TABLE = load_table(croco.PATCH_DIR / "patches.toml")
REGEX_LINES = {"cppdefs-switch": "#endif /* END OF CONFIGURATION CHOICE */"}   # lines the regexes match


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A CROCO-like source root: OCEAN/ with every anchor once, a jobcomp."""
    ocean = tmp_path / "croco" / "OCEAN"
    ocean.mkdir(parents=True)
    for name in croco.PATCHED:
        anchors = list(dict.fromkeys(p.anchor or REGEX_LINES[p.id] for p in TABLE if p.target == name))
        body = []
        for k, a in enumerate(anchors):
            body += [f"      filler line {k} of {name}", a]
        (ocean / name).write_text("\n".join(body + ["      end", ""]))
    (ocean / "jobcomp").write_text("#!/bin/bash\necho jobcomp\n")
    (ocean / "jobcomp").chmod(0o755)
    return tmp_path / "croco"


def install(tree: Path, run: Path, *extra: str) -> int:
    return croco.main(["--croco", str(tree), "--run-dir", str(run), *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_applies_every_patch_and_copies(tree, tmp_path, capsys):
    run = tmp_path / "run"
    assert install(tree, run, "--np-xi", "2", "--np-eta", "3") == 0
    for name in croco.PATCHED:
        lines = (run / name).read_text().split("\n")
        want = {p.id for p in TABLE if p.target == name and p.id not in croco.OASIS_ONLY}
        assert set(find_blocks(lines)) == want, name
    for name in croco.BRIDGE_SOURCES:
        assert (run / name).read_bytes() == (croco.FORTRAN_DIR / name).read_bytes()
    for name in croco.ADAPTER_SOURCES + (croco.NAMELIST,):
        assert (run / name).read_bytes() == (croco.PATCH_DIR / name).read_bytes()
    assert (run / "jobcomp").stat().st_mode & 0o111
    param = (run / "param.h").read_text()
    assert "# define SPLITTING_X 2" in param and "# define SPLITTING_ETA 3" in param
    assert "key_obridge_oasis" not in (run / "cppdefs.h").read_text()
    assert "mpirun -np 6 ./croco" in capsys.readouterr().out


def test_makefile_markers_are_make_comments(tree, tmp_path):
    run = tmp_path / "run"
    install(tree, run)
    marked = [line for line in (run / "Makefile").read_text().splitlines() if " oceanbridge " in line]
    assert marked and all(line.startswith("# ") for line in marked)


def test_idempotent(tree, tmp_path, capsys):
    run = tmp_path / "run"
    assert install(tree, run) == 0
    first = snapshot(run)
    capsys.readouterr()
    assert install(tree, run) == 0
    assert snapshot(run) == first
    out = capsys.readouterr().out
    assert "patched" not in out and "copied" not in out


def test_new_decomposition_upgrades_the_block(tree, tmp_path):
    run = tmp_path / "run"
    install(tree, run, "--np-xi", "2")
    install(tree, run, "--np-xi", "1", "--np-eta", "4")
    param = (run / "param.h").read_text()
    assert param.count("param-decomposition:") == 1
    assert "# define SPLITTING_X 1" in param and "# define SPLITTING_ETA 4" in param


def test_run_folder_copy_is_patched_not_replaced(tree, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    mine = (tree / "OCEAN" / "cppdefs.h").read_text().replace("filler line 0", "my own BASIN choice")
    (run / "cppdefs.h").write_text(mine)
    (run / croco.NAMELIST).write_text("&namobridge\n ln_obridge = .true.\n/\n")
    install(tree, run)
    text = (run / "cppdefs.h").read_text()
    assert "my own BASIN choice" in text and "#define OBRIDGE" in text
    assert "ln_obridge = .true." in (run / croco.NAMELIST).read_text()   # the user's switches are kept


def test_refuses_missing_anchor_and_writes_nothing(tree, tmp_path, capsys):
    step = tree / "OCEAN" / "step.F"
    step.write_text(step.read_text().replace("iif = iif+1", "iif = iif + 1"))
    run = tmp_path / "run"
    assert install(tree, run) == 2
    out = capsys.readouterr().out
    assert "step.F" in out and "iif = iif+1" in out and "found 0" in out
    assert not run.exists() or not any(run.iterdir())


def test_refuses_twice_matched_anchor(tree, tmp_path, capsys):
    main = tree / "OCEAN" / "main.F"
    main.write_text(main.read_text() + "\n      call MPI_Init (ierr)\n")
    assert install(tree, tmp_path / "run") == 2
    assert "main.F" in capsys.readouterr().out


def test_dry_run_writes_nothing_and_shows_diffs(tree, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert install(tree, run, "--dry-run") == 0
    assert not any(run.iterdir())
    out = capsys.readouterr().out
    assert "+++ b/step.F" in out and "call obr_croco_after_step" in out and "(dry run)" in out


def test_bad_options_are_named(tree, tmp_path, capsys):
    assert install(tree, tmp_path / "run", "--np-xi", "0") == 2
    assert "--np-xi 0" in capsys.readouterr().out
    assert croco.main(["--croco", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "OCEAN/main.F" in capsys.readouterr().out


def test_oasis_backend_adds_key_and_source_and_switches_back(tree, tmp_path):
    if not (croco.FORTRAN_DIR / croco.OASIS_SOURCE).is_file():
        pytest.skip("bridge/fortran/obr_oasis.F90 is not in this checkout")
    run = tmp_path / "run"
    assert install(tree, run, "--backend", "oasis") == 0
    assert "# define key_obridge_oasis" in (run / "cppdefs.h").read_text()
    assert (run / croco.OASIS_SOURCE).is_file()
    assert install(tree, run, "--backend", "mpi") == 0
    assert "key_obridge_oasis" not in (run / "cppdefs.h").read_text()


def test_namelist_parses_and_names_only_known_switches():
    nml = f90nml.read(croco.PATCH_DIR / croco.NAMELIST)
    switches = dict(nml["namobridge"])
    check_switches(switches)          # every switch is one the deploy layer knows, with its type
    assert switches["ln_obridge"] is False and switches["cn_obr_name"] == "croco"


@pytest.mark.skipif(shutil.which("cpp") is None, reason="no C preprocessor (cpp) on this machine")
def test_cppdefs_block_turns_on_mpi_and_renames_the_communicator(tmp_path):
    switch, key = (next(p for p in TABLE if p.id == i).block() for i in ("cppdefs-switch", "cppdefs-key"))
    probe = ["#ifdef MPI", "      MPI_IS_ON", "#endif", "      x = MPI_COMM_WORLD", ""]
    src = tmp_path / "probe.F"
    for user, on in (([], True), (["#undef OBRIDGE"], False)):   # a user's '#undef OBRIDGE' after the switch
        src.write_text("\n".join(switch + user + ["#undef MPI"] + key + probe))
        out = subprocess.run(["cpp", "-traditional", "-P", str(src)], capture_output=True, text=True,
                             check=True).stdout
        assert ("MPI_IS_ON" in out) is on and ("x = ocean_grid_comm" in out) is on, out


@pytest.mark.croco
@pytest.mark.skipif(not os.environ.get("CROCO_SRC"), reason="CROCO_SRC is not set (a CROCO v2.1.3 source root, "
                                                           "the folder holding OCEAN/)")
def test_real_v2_1_3_tree_takes_every_patch(tmp_path, capsys):
    """The pinned tag's own files: every anchor found once, a second install changes nothing."""
    run = tmp_path / "run"
    assert install(Path(os.environ["CROCO_SRC"]), run, "--np-xi", "2") == 0
    first = snapshot(run)
    assert install(Path(os.environ["CROCO_SRC"]), run, "--np-xi", "2") == 0
    assert snapshot(run) == first
    assert "obr_croco_after_step" in (run / "step.F").read_text()
    # CROCO's cppcheck counts every key defined before the first #if as a configuration (and refuses two)
    lines = [line.strip() for line in (run / "cppdefs.h").read_text().splitlines()]
    first_if = next(k for k, line in enumerate(lines) if line.startswith("#if"))
    assert lines.index("#define OBRIDGE         /* oceanbridge coupling, switches in namelist_obridge */") > first_if


def _preprocessed(src: Path, include: list[Path]) -> list[str]:
    """``cpp -traditional -P`` of a CROCO file as jobcomp runs it, without blank and comment lines."""
    out = subprocess.run(["cpp", "-traditional", "-DLinux", "-P", *(f"-I{d}" for d in include), str(src)],
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip() and not line.startswith("!")]


@pytest.mark.croco
@pytest.mark.skipif(not os.environ.get("CROCO_SRC") or shutil.which("cpp") is None,
                    reason="CROCO_SRC is not set (a CROCO v2.1.3 source root) or no cpp")
def test_key_off_leaves_croco_unchanged(tmp_path):
    """With '#undef OBRIDGE' after the switch, the patched main.F and step.F preprocess to CROCO's own code."""
    ocean = Path(os.environ["CROCO_SRC"]) / "OCEAN"
    run = tmp_path / "run"
    assert install(Path(os.environ["CROCO_SRC"]), run) == 0
    cppdefs = run / "cppdefs.h"
    cppdefs.write_text(cppdefs.read_text().replace("/* <<< oceanbridge cppdefs-switch */",
                                                   "/* <<< oceanbridge cppdefs-switch */\n#undef OBRIDGE"))
    for name in ("main.F", "step.F"):
        assert _preprocessed(run / name, [run, ocean]) == _preprocessed(ocean / name, [ocean]), name

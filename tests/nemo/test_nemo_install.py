"""`oceanbridge install nemo` on a small synthetic NEMO tree (no NEMO needed)."""
from __future__ import annotations

import f90nml
import pytest
from nemo_tree import make_tree, snapshot

from deploy.install import main as install_main
from deploy.install.nemo import BRIDGE_FORTRAN, PATCHES, install
from deploy.install.patching import find_blocks

CFG = "GYRE_OCE"


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "nemo", CFG)


def test_install_copies_sources_inserts_hooks_key_and_namelist(tree):
    install(tree, CFG, show=lambda s: None)
    my_src = tree / "cfgs" / CFG / "MY_SRC"
    for src in list(PATCHES.glob("*.F90")) + list(BRIDGE_FORTRAN.glob("*.F90")):
        assert (my_src / src.name).read_text() == src.read_text(), f"{src.name} is not the repository's copy"
    nemogcm = (my_src / "nemogcm.F90").read_text()
    assert set(find_blocks(nemogcm.split("\n"))) == {"nemogcm-use", "nemogcm-comm-open", "nemogcm-comm-close",
                                                     "nemogcm-define", "nemogcm-begin", "nemogcm-finalize"}
    # the original mpp_start( ) line is kept, between #else and #endif of key_obridge
    lines = [ln.strip() for ln in nemogcm.split("\n")]
    k = lines.index("CALL mpp_start( )")
    assert lines[k - 2:k] == ["#else", "! <<< oceanbridge nemogcm-comm-open"]
    assert lines[k + 1:k + 3] == ["! >>> oceanbridge nemogcm-comm-close: end of the communicator switch", "#endif"]
    assert "CALL obn_step( kstp, Nbb )" in (my_src / "stprk3.F90").read_text()
    assert "CALL obn_step( kstp, Nnn )" in (my_src / "stpmlf.F90").read_text()
    assert "PUBLIC   ncomp_id" in (my_src / "cpl_oasis3.F90").read_text()
    assert (tree / "cfgs" / CFG / f"cpp_{CFG}.fcm").read_text().split() == \
        ["bld::tool::fppkeys", "key_linssh", "key_vco_1d", "key_RK3", "key_obridge"]
    # the namelist block went into the file EXP00/namelist_ref links to, and parses with the defaults
    nml = f90nml.read(str(tree / "cfgs" / CFG / "EXP00" / "namelist_ref"))
    assert nml["namobridge"]["ln_obridge"] is False
    assert nml["namobridge"]["cn_obr_name"] == "nemo" and nml["namrun"]["nn_it000"] == 1
    assert "&namobridge" in (tree / "cfgs" / "SHARED" / "namelist_ref").read_text()
    assert (tree / "src" / "OCE" / "nemogcm.F90").read_text().count("obn_") == 0   # src/ untouched


def test_install_again_is_a_noop(tree):
    install(tree, CFG, show=lambda s: None)
    before = snapshot(tree)
    plan = install(tree, CFG, show=lambda s: None)
    assert plan.writes == {} and snapshot(tree) == before


def test_dry_run_writes_nothing_and_shows_diffs(tree, capsys):
    before = snapshot(tree)
    assert install_main(["nemo", "--nemo", str(tree), "--cfg", CFG, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert snapshot(tree) == before
    assert "+      IF( nstop == 0 )   CALL obn_step( kstp, Nbb )" in out
    assert "+bld::tool::fppkeys" in out and "would create" in out and "would write" in out


def test_missing_anchor_refuses_and_leaves_the_tree(tree, capsys):
    gcm = tree / "src" / "OCE" / "nemogcm.F90"
    gcm.write_text(gcm.read_text().replace("      CALL nemo_closefile\n", ""))
    before = snapshot(tree)
    assert install_main(["nemo", "--nemo", str(tree), "--cfg", CFG]) == 1
    err = capsys.readouterr().err
    assert "nemogcm.F90: patch 'nemogcm-finalize': anchor 'CALL nemo_closefile' must match exactly one line, found 0" \
        in err
    assert snapshot(tree) == before


def test_configuration_own_copy_is_patched(tree):
    my_src = tree / "cfgs" / CFG / "MY_SRC"
    my_src.mkdir()
    own = (tree / "src" / "OCE" / "stpmlf.F90").read_text().replace("CONTAINS", "   ! DINO's own copy\nCONTAINS")
    (my_src / "stpmlf.F90").write_text(own)
    install(tree, CFG, show=lambda s: None)
    text = (my_src / "stpmlf.F90").read_text()
    assert "DINO's own copy" in text and "CALL obn_step( kstp, Nnn )" in text


def test_oasis_backend_key_and_switch_back(tree, capsys):
    fcm = tree / "cfgs" / CFG / f"cpp_{CFG}.fcm"
    install(tree, CFG, backend="oasis", show=print)
    assert fcm.read_text().split()[-2:] == ["key_obridge", "key_obridge_oasis"]
    assert "add key_oasis3 too" in capsys.readouterr().out
    install(tree, CFG, backend="mpi", show=lambda s: None)
    assert "key_obridge_oasis" not in fcm.read_text() and "key_obridge" in fcm.read_text()


def test_unknown_configuration_is_named(tree, capsys):
    assert install_main(["nemo", "--nemo", str(tree), "--cfg", "NOPE"]) == 1
    assert "cfgs/NOPE/cpp_NOPE.fcm not found: create the configuration first" in capsys.readouterr().err
    assert install_main(["nemo", "--nemo", str(tree / "cfgs"), "--cfg", CFG]) == 1
    assert "not a NEMO source tree" in capsys.readouterr().err


def test_uninstall_gives_back_the_tree(tree, capsys):
    own = tree / "cfgs" / CFG / "MY_SRC"
    own.mkdir()
    (own / "stpmlf.F90").write_text((tree / "src" / "OCE" / "stpmlf.F90").read_text() + "! mine\n")
    before = snapshot(tree)
    install(tree, CFG, show=lambda s: None)
    assert install_main(["nemo", "--nemo", str(tree), "--cfg", CFG, "--uninstall", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out
    assert install_main(["nemo", "--nemo", str(tree), "--cfg", CFG, "--uninstall"]) == 0
    assert snapshot(tree) == before          # the configuration's own stpmlf.F90 stays, without the blocks

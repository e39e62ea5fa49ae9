"""&namobridge editing with f90nml: other content kept, unknown switches named, checks for launch."""
from __future__ import annotations

import f90nml
import numpy as np
import pytest
from deploy_fixtures import NAMELIST_CFG, PARAMETERS

from bridge.config.ensemble import draw_parameters
from bridge.config.namelist import NamelistError, namelist_diffs, patch_namelist, set_namobridge, unknown_switches
from deploy.preprod import PreprodError, check_members, member_patch, namobridge_switches, preprod

SWITCHES = {"ln_obridge": True, "nn_obr_freq": 12, "cn_obr_send": ["ssh", "u"], "rn_obr_timeout": 60.0}


def test_set_switches_keeps_everything_else(tree):
    path = tree / "tmpl" / "namelist_cfg"
    set_namobridge(path, SWITCHES)
    text = path.read_text()
    for line in NAMELIST_CFG.splitlines():  # every original line, comments included, is still there
        assert line in text.splitlines()
    nml = f90nml.read(path)
    assert nml["namrun"]["cn_exp"] == "demo" and nml["namctl"]["nn_ctl"] == 5
    assert dict(nml["namobridge"]) == {"ln_obridge": True, "nn_obr_freq": 12, "cn_obr_send": ["ssh", "u"],
                                       "rn_obr_timeout": 60.0}
    assert namelist_diffs(path, {"namobridge": SWITCHES}) == []


def test_round_trip_is_stable(tree):
    path = tree / "tmpl" / "namelist_cfg"
    set_namobridge(path, SWITCHES)
    once = path.read_text()
    set_namobridge(path, SWITCHES)
    assert path.read_text() == once


def test_existing_switch_is_edited_in_place(tree):
    path = tree / "tmpl" / "namelist_ref"
    set_namobridge(path, {"ln_obridge": True})
    assert "   ln_obridge = .true.\n" in path.read_text()
    assert path.read_text().count("&namobridge") == 1


def test_write_to_another_file_leaves_the_template(tree):
    src, out = tree / "tmpl" / "namelist_cfg", tree / "namelist_member"
    set_namobridge(src, SWITCHES, out)
    assert src.read_text() == NAMELIST_CFG
    assert f90nml.read(out)["namobridge"]["nn_obr_freq"] == 12


def test_unknown_switch_is_named(tree):
    path = tree / "tmpl" / "namelist_cfg"
    with pytest.raises(NamelistError, match="unknown &namobridge switch 'ln_obr_emulate' "):
        set_namobridge(path, {"ln_obr_emulate": True})
    assert path.read_text() == NAMELIST_CFG  # nothing written


def test_ill_typed_switch_is_named(tree):
    with pytest.raises(NamelistError, match="switch 'nn_obr_freq' must be a int, got '12'"):
        set_namobridge(tree / "tmpl" / "namelist_cfg", {"nn_obr_freq": "12"})


def test_unknown_switch_already_in_a_file_is_reported(tree):
    path = tree / "tmpl" / "namelist_cfg"
    patch_namelist(path, {"namobridge": {"ln_obrigde": True}})
    assert unknown_switches(path) == [f"{path}: unknown &namobridge switch 'ln_obrigde'"]


def test_diffs_name_group_variable_and_values(tree):
    path = tree / "tmpl" / "namelist_cfg"
    set_namobridge(path, SWITCHES)
    want = {"namobridge": dict(SWITCHES, nn_obr_freq=6, cn_obr_send=["ssh"], ln_obr_spinup=False),
            "namphys": {"rn_tau0": 0.1}}
    assert namelist_diffs(path, want) == [
        f"{path}: &namobridge nn_obr_freq is 12, the config gives 6",
        f"{path}: &namobridge cn_obr_send is 'ssh', 'u', the config gives 'ssh'",
        f"{path}: &namobridge ln_obr_spinup is unset, the config gives .false.",
        f"{path}: group &namphys is missing",
    ]


def test_switches_from_the_field_table(make_config):
    cfg = make_config(ocean={"members": 2, "emu_mode": "increment", "required": False},
                      worker={"modes": ["train", "emulate"]},
                      fields=[{"name": "ssh", "direction": "ocean_to_worker", "freq": 4},
                              {"name": "ssh_emu", "direction": "worker_to_ocean", "freq": 40}])
    assert namobridge_switches(cfg, "gyre_2") == {
        "ln_obridge": True, "nn_obr_freq": 4, "cn_obr_send": ["ssh"], "ln_obr_emulator": True,
        "cn_obr_emu_mode": "increment", "nn_obr_emu_freq": 40, "ln_obr_spinup": False,
        "ln_obr_required": False, "rn_obr_timeout": 60.0, "cn_obr_name": "gyre_2"}


def test_member_patch_sets_run_length_grid_and_theta(make_config):
    cfg = make_config(ocean={"members": 3}, parameters=PARAMETERS, run={"nit000": 11})
    theta = draw_parameters(cfg)
    patch = member_patch(cfg, 3, theta)
    assert patch["namrun"] == {"nn_it000": 11, "nn_itend": 730, "rn_dt": 1200.0}
    assert patch["namdom"] == {"nn_nx": 128, "nn_ny": 96}
    assert patch["namphys"] == {"rn_tau0": theta[2, 0], "rn_ahm": theta[2, 1]}


def test_parameter_clashing_with_run_variable(make_config):
    cfg = make_config(parameters=[{"name": "dt", "block": "namrun", "var": "rn_dt", "low": 600.0,
                                   "high": 1800.0}])
    with pytest.raises(PreprodError, match=r"&namrun rn_dt would be set twice \(again by parameter 'dt'\)"):
        member_patch(cfg, 1, draw_parameters(cfg))


def test_preprod_ensemble_writes_members_and_check_passes(make_config, tree):
    cfg = make_config(ocean={"members": 3}, parameters=PARAMETERS)
    written = preprod(cfg)
    run = tree / "run"
    assert written == [run / "member_1" / "namelist_ref", run / "member_1" / "namelist_cfg",
                       run / "member_2" / "namelist_ref", run / "member_2" / "namelist_cfg",
                       run / "member_3" / "namelist_ref", run / "member_3" / "namelist_cfg",
                       run / "parameters.csv"]
    assert (run / "member_2" / "namelist_ref").resolve() == tree / "tmpl" / "namelist_ref"
    theta = draw_parameters(cfg)
    nml = f90nml.read(run / "member_2" / "namelist_cfg")
    assert nml["namobridge"]["cn_obr_name"] == "gyre_2"
    assert nml["namphys"]["rn_tau0"] == theta[1, 0]  # full precision survives the text round trip
    assert nml["namrun"]["cn_exp"] == "demo"
    assert check_members(cfg) == []
    assert preprod(cfg) == [run / f"member_{k}" / "namelist_cfg" for k in (1, 2, 3)] + [run / "parameters.csv"]


def test_check_members_reports_stale_theta_and_missing_folder(make_config, tree):
    cfg = make_config(ocean={"members": 2}, parameters=PARAMETERS)
    preprod(cfg)
    member = tree / "run" / "member_1" / "namelist_cfg"
    patch_namelist(member, {"namphys": {"rn_tau0": 0.5}})
    reseeded = make_config(ocean={"members": 3}, parameters=PARAMETERS)
    problems = check_members(reseeded)
    assert problems[0].startswith(f"{member}: &namphys rn_tau0 is 0.5, the config gives ")
    assert problems[-1] == (f"{tree / 'run' / 'member_3' / 'namelist_cfg'}: missing; run "
                            f"'oceanbridge preprod {reseeded.source}'")


def test_reference_namelist_must_define_the_block(make_config, tree):
    (tree / "tmpl" / "namelist_ref").write_text("&namrun\n/\n")
    cfg = make_config()
    preprod(cfg)
    ref = tree / "run" / "namelist_ref"
    assert check_members(cfg) == [f"{ref}: has no &namobridge block, so the model would stop reading it; "
                                  "install the oceanbridge patches of gyre (they add the block to namelist_ref)"]


def test_preprod_never_overwrites_a_real_file(make_config, tree):
    (tree / "run").mkdir()
    (tree / "run" / "namelist_ref").write_text("&namrun\n/\n")
    with pytest.raises(PreprodError, match="namelist_ref exists and is not a link to"):
        preprod(make_config())


def test_croco_namelist_is_created(make_config, tree):
    cfg = make_config(ocean={"model": "croco", "namelist": None, "namelist_ref": None})
    preprod(cfg)
    path = tree / "run" / "namelist_obridge"
    assert path.read_text().startswith("! written by oceanbridge preprod\n&namobridge\n")
    assert f90nml.read(path)["namobridge"]["cn_obr_send"] == ["ssh", "u"]
    assert check_members(cfg) == []


def test_nemo_namelist_is_patched_in_place(make_config, tree):
    exp = tree / "run"
    exp.mkdir()
    (exp / "namelist_cfg").write_text("&namrun\n   nn_itend = 4320 ! last step\n/\n&namdom\n   rn_Dt = 7200.\n/\n")
    cfg = make_config(ocean={"model": "nemo", "namelist": None, "namelist_ref": None})
    assert preprod(cfg) == [exp / "namelist_cfg"]
    text = (exp / "namelist_cfg").read_text()
    assert "   nn_itend = 720 ! last step\n" in text
    assert "   rn_Dt = 1200.0\n" in text
    assert check_members(cfg) == []
    assert np.isclose(f90nml.read(exp / "namelist_cfg")["namdom"]["rn_dt"], 1200.0)


def test_send_list_clears_the_reference_entries(make_config, tree):
    """Fortran assigns only the array elements it reads: 'ssh' over a reference 'ssh','u','v','temp'
    would still send u, v, temp; preprod blanks them."""
    ref = tree / "tmpl" / "namelist_ref"
    patch_namelist(ref, {"namobridge": {"cn_obr_send": ["ssh", "u", "v", "temp"]}})
    cfg = make_config(fields=[{"name": "ssh", "direction": "ocean_to_worker"}])
    preprod(cfg)
    nml = f90nml.read(tree / "run" / "namelist_cfg")
    assert nml["namobridge"]["cn_obr_send"] == ["ssh", "", "", ""]
    assert check_members(cfg) == []


def test_files_get_the_names_the_model_opens(make_config, tree):
    (tree / "tmpl" / "namelist_ref").rename(tree / "tmpl" / "ref.gyre")
    (tree / "tmpl" / "namelist_cfg").rename(tree / "tmpl" / "cfg.gyre")
    cfg = make_config(ocean={"members": 2, "namelist": "tmpl/cfg.gyre", "namelist_ref": "tmpl/ref.gyre"})
    written = preprod(cfg)
    member = tree / "run" / "member_1"
    assert written[:2] == [member / "namelist_ref", member / "namelist_cfg"]
    assert check_members(cfg) == []


@pytest.mark.parametrize("new", [["sst", "sss", "ssh", "u", "v", "tem3d"], ["ssh", "u"]])
def test_resizing_a_list_keeps_the_group_intact(tmp_path, new):
    """f90nml 1.5's patch corrupts a group when it lengthens a list; the patched file must hold exactly
    the new list and every other variable of the group (and a list split over lines, with comments)."""
    path = tmp_path / "namelist_cfg"
    path.write_text("&namrun\n   nn_itend = 10   ! steps\n/\n"
                    "&namobridge\n   ln_obridge = .true.\n   cn_obr_send = 'sst','sss',\n"
                    "                 'ssh','u','v'   ! five\n   ln_obr_emulator = .false.\n   nn_obr_freq = 6\n/\n")
    set_namobridge(path, {"cn_obr_send": new, "ln_obr_emulator": True})
    nml = f90nml.read(path)
    assert dict(nml["namobridge"]) == {"ln_obridge": True, "ln_obr_emulator": True, "nn_obr_freq": 6,
                                       "cn_obr_send": new}
    assert nml["namrun"]["nn_itend"] == 10 and "! steps" in path.read_text()

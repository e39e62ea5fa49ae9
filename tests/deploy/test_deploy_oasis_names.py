"""User-given OASIS names of the worker's end of a field (``[[fields]] oasis_name``), issue 15.

A worker that attaches to a namcouple whose names are fixed (eophis, Morays)
needs its variables named as that file names them, not UPPER(<worker>_<member>_<field>).
The name is validated at load, is per member (``{k}``) with several members, and is
used by preprod's namcouple writer, by the launch namcouple check and by the
Python OASIS transport (``DeployConfig.worker_oasis_name``).
"""
from __future__ import annotations

import pytest

from bridge.config.config import load_config
from bridge.transport.naming import OASIS_NAME_MAX, check_oasis_name, member_oasis_name
from deploy.launch import preflight
from deploy.namcouple import check_namcouple, expected_namcouple, parse_namcouple, render_namcouple
from deploy.preprod import preprod
from models.settings import ConfigError

FIXED = [{"name": "ssh", "direction": "ocean_to_worker", "freq": 12, "oasis_name": "E_IN_{k}"},
         {"name": "u", "direction": "ocean_to_worker", "freq": 12},  # no oasis_name: the default name
         {"name": "ssh_emu", "direction": "worker_to_ocean", "freq": 12, "oasis_name": "E_OUT_{k}"},
         {"name": "u_emu", "direction": "worker_to_ocean", "freq": 12}]


def _cfg(make_config, members=2, fields=FIXED):
    return make_config(run={"backend": "oasis"}, ocean={"members": members}, fields=fields,
                       worker={"modes": ["train", "emulate"]})


def test_namcouple_uses_the_given_worker_names_per_member(make_config):
    entries = expected_namcouple(_cfg(make_config)).entries
    assert [(e.source, e.target, e.restart) for e in entries] == [
        ("GYRE_1_SSH", "E_IN_1", "rst_gyre_1_ssh.nc"),
        ("GYRE_1_U", "WORKER_GYRE_1_U", "rst_gyre_1_u.nc"),
        ("E_OUT_1", "GYRE_1_SSH_EMU", "rst_e_out_1.nc"),  # the worker sends: its name is the source
        ("WORKER_GYRE_1_U_EMU", "GYRE_1_U_EMU", "rst_worker_gyre_1_u_emu.nc"),
        ("GYRE_2_SSH", "E_IN_2", "rst_gyre_2_ssh.nc"),
        ("GYRE_2_U", "WORKER_GYRE_2_U", "rst_gyre_2_u.nc"),
        ("E_OUT_2", "GYRE_2_SSH_EMU", "rst_e_out_2.nc"),
        ("WORKER_GYRE_2_U_EMU", "GYRE_2_U_EMU", "rst_worker_gyre_2_u_emu.nc")]


def test_preprod_writes_them_and_launch_checks_them(make_config, write_config, tree):
    cfg = _cfg(make_config)
    preprod(cfg)
    text = (tree / "run" / "namcouple").read_text()
    assert "GYRE_1_SSH E_IN_1 1 14400 0 rst_gyre_1_ssh.nc EXPORTED\n" in text
    assert "E_OUT_2 GYRE_2_SSH_EMU 1 14400 0 rst_e_out_2.nc EXPORTED\n" in text
    assert check_namcouple(cfg) == []
    # the fixed namcouple of another setup says E_IN_1, the config now asks for SSH_IN_1: launch names both
    renamed = [dict(FIXED[0], oasis_name="SSH_IN_{k}"), *FIXED[1:]]
    problems = preflight(load_config(write_config(run={"backend": "oasis"}, ocean={"members": 2}, fields=renamed,
                                                  worker={"modes": ["train", "emulate"]})))
    namcouple = tree / "run" / "namcouple"
    assert f"{namcouple}: field 'ssh' (GYRE_1_SSH -> SSH_IN_1) is missing" in problems
    assert f"{namcouple}: entry GYRE_1_SSH -> E_IN_1 is not in the config's field table" in problems


def test_a_fixed_namcouple_is_accepted_as_it_is(make_config, tmp_path):
    """An existing namcouple (written by hand, eophis style) with the worker's names fixed passes the check."""
    cfg = _cfg(make_config, members=1,
               fields=[dict(FIXED[0], oasis_name="E_IN_0"), dict(FIXED[2], oasis_name="E_OUT_0")])
    text = ("$NFIELDS\n2\n$END\n$RUNTIME\n865200\n$END\n$NLOGPRT\n1 0\n$END\n$STRINGS\n"
            "GYRE_SSH E_IN_0 1 14400 0 rst_in.nc EXPORTED\n128 96 128 96 obrg obrg LAG=0\nR 0 R 0\n"
            "E_OUT_0 GYRE_SSH_EMU 1 14400 0 rst_out.nc EXPORTED\n128 96 128 96 obrg obrg LAG=0\nR 0 R 0\n$END\n")
    (tmp_path / "namcouple").write_text(text)
    assert check_namcouple(cfg, tmp_path / "namcouple") == []
    assert [(e.source, e.target) for e in parse_namcouple(render_namcouple(expected_namcouple(cfg))).entries] == [
        ("GYRE_SSH", "E_IN_0"), ("E_OUT_0", "GYRE_SSH_EMU")]
    assert cfg.worker_oasis_name("gyre", cfg.fields[0]) == "E_IN_0"


@pytest.mark.parametrize("name, message", [
    ("E IN", r"key 'oasis_name': invalid OASIS name 'E IN': use a letter, then letters, digits and '_' \(no blank"),
    ("1_IN", r"key 'oasis_name': invalid OASIS name '1_IN'"),
    ("E#IN", r"key 'oasis_name': invalid OASIS name 'E#IN'"),
    ("E_{member}", r"key 'oasis_name': OASIS name 'E_\{member\}': the only placeholder is \{k\}"),
    ("E" * (OASIS_NAME_MAX + 1), f"key 'oasis_name': OASIS name 'E+' has {OASIS_NAME_MAX + 1} characters, more "
                                 f"than the {OASIS_NAME_MAX} OASIS3-MCT accepts"),
])
def test_a_bad_name_is_named_with_file_field_and_key(write_config, tree, name, message):
    fields = [dict(FIXED[0], oasis_name=name)]
    with pytest.raises(ConfigError, match=message) as err:
        load_config(write_config(run={"backend": "oasis"}, fields=fields))
    assert f"{tree / 'cfg.toml'}: [[fields]] #1 'ssh'" in str(err.value)


def test_several_members_need_the_member_number(write_config):
    fields = [dict(FIXED[0], oasis_name="E_IN_0")]
    with pytest.raises(ConfigError, match=r"\[\[fields\]\] 'ssh': key 'oasis_name' = 'E_IN_0' would be the same for "
                                          r"the 3 members; put \{k\} \(the member number\) in it, e.g. 'E_IN_0_\{k\}'"):
        load_config(write_config(run={"backend": "oasis"}, ocean={"members": 3}, fields=fields))
    cfg = load_config(write_config(run={"backend": "oasis"}, ocean={"members": 1}, fields=fields))
    assert cfg.worker_oasis_name("gyre", cfg.fields[0]) == "E_IN_0"  # one member: a fixed name is fine


def test_two_ends_with_one_name_are_refused(write_config):
    fields = [dict(FIXED[0], oasis_name="E_{k}"), {"name": "u", "direction": "ocean_to_worker", "freq": 12,
                                                   "oasis_name": "E_{k}"}]
    with pytest.raises(ConfigError, match=r"\[\[fields\]\] 'u': OASIS name 'E_1' is both the worker's end of field "
                                          r"'ssh' towards member 'gyre_1' and the worker's end of field 'u' towards "
                                          r"member 'gyre_1'"):
        load_config(write_config(run={"backend": "oasis"}, ocean={"members": 2}, fields=fields))
    clash = [dict(FIXED[0], oasis_name="GYRE_U"), {"name": "u", "direction": "ocean_to_worker", "freq": 12}]
    with pytest.raises(ConfigError, match=r"OASIS name 'GYRE_U' is both the worker's end of field 'ssh' towards "
                                          r"member 'gyre' and the ocean's end of field 'u' of member 'gyre'"):
        load_config(write_config(run={"backend": "oasis"}, fields=clash))


def test_naming_helpers():
    assert member_oasis_name("E_IN_{k}", 12) == "E_IN_12" and member_oasis_name("O_SSTSST", 3) == "O_SSTSST"
    assert check_oasis_name("oIceFrc") == "oIceFrc"  # OASIS names are case-sensitive: kept as given
    with pytest.raises(ValueError, match="has 81 characters"):
        member_oasis_name("E" * 79 + "{k}", 10)

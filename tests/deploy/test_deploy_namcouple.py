"""namcouple: exact text, write/parse round trip, and stale files caught naming the field."""
from __future__ import annotations

from dataclasses import replace

import pytest

from deploy.launch import preflight
from deploy.namcouple import (
    NamcoupleError,
    check_namcouple,
    compare_namcouple,
    expected_namcouple,
    parse_namcouple,
    render_namcouple,
    without_field_labels,
    write_namcouple,
)
from deploy.preprod import preprod

EMU_FIELDS = [{"name": "ssh", "direction": "ocean_to_worker", "freq": 12},
              {"name": "u", "direction": "ocean_to_worker", "freq": 12, "nlev": 5},
              {"name": "ssh_emu", "direction": "worker_to_ocean", "freq": 72, "lag": 1},
              {"name": "u_emu", "direction": "worker_to_ocean", "freq": 72, "nlev": 5, "seq": 2}]

EXPECTED_K2 = """\
$NFIELDS
8
$END
$RUNTIME
865200
$END
$NLOGPRT
1 0
$END
$STRINGS
# field 'ssh'
GYRE_1_SSH WORKER_GYRE_1_SSH 1 14400 0 rst_gyre_1_ssh.nc EXPORTED
128 96 128 96 obrg obrg LAG=0
R 0 R 0
# field 'u'
GYRE_1_U WORKER_GYRE_1_U 1 14400 0 rst_gyre_1_u.nc EXPORTED
128 96 128 96 obrg obrg LAG=0
R 0 R 0
# field 'ssh_emu'
WORKER_GYRE_1_SSH_EMU GYRE_1_SSH_EMU 1 86400 0 rst_worker_gyre_1_ssh_emu.nc EXPORTED
128 96 128 96 obrg obrg LAG=1200
R 0 R 0
# field 'u_emu'
WORKER_GYRE_1_U_EMU GYRE_1_U_EMU 1 86400 0 rst_worker_gyre_1_u_emu.nc EXPORTED
128 96 128 96 obrg obrg LAG=0 SEQ=2
R 0 R 0
# field 'ssh'
GYRE_2_SSH WORKER_GYRE_2_SSH 1 14400 0 rst_gyre_2_ssh.nc EXPORTED
128 96 128 96 obrg obrg LAG=0
R 0 R 0
# field 'u'
GYRE_2_U WORKER_GYRE_2_U 1 14400 0 rst_gyre_2_u.nc EXPORTED
128 96 128 96 obrg obrg LAG=0
R 0 R 0
# field 'ssh_emu'
WORKER_GYRE_2_SSH_EMU GYRE_2_SSH_EMU 1 86400 0 rst_worker_gyre_2_ssh_emu.nc EXPORTED
128 96 128 96 obrg obrg LAG=1200
R 0 R 0
# field 'u_emu'
WORKER_GYRE_2_U_EMU GYRE_2_U_EMU 1 86400 0 rst_worker_gyre_2_u_emu.nc EXPORTED
128 96 128 96 obrg obrg LAG=0 SEQ=2
R 0 R 0
$END
"""

# A minimal namcouple (one field each way, no interpolation), as checked against OASIS3-MCT 4.0.
DESIGN_MINIMAL = """\
$NFIELDS
2
$END
$RUNTIME
21600
$END
$NLOGPRT
1 0
$END
$STRINGS
FOCN_SST FPY_SST 1 3600 0 rst_sst.nc EXPORTED
60 40 60 40 ocnt ocnt LAG=0
R 0 R 0
FPY_CORR FOCN_CORR 1 3600 0 rst_corr.nc EXPORTED
60 40 60 40 ocnt ocnt LAG=0
R 0 R 0
$END
"""


@pytest.fixture
def oasis_cfg(make_config):
    return make_config(run={"backend": "oasis"}, ocean={"members": 2}, fields=EMU_FIELDS,
                       worker={"modes": ["train", "emulate"]})


def test_exact_text_for_two_members(oasis_cfg):
    assert render_namcouple(expected_namcouple(oasis_cfg)) == EXPECTED_K2


def test_round_trip(oasis_cfg, tmp_path):
    path = write_namcouple(oasis_cfg, tmp_path / "namcouple")
    parsed = parse_namcouple(path)
    assert parsed == without_field_labels(expected_namcouple(oasis_cfg))
    assert render_namcouple(parsed) == render_namcouple(without_field_labels(expected_namcouple(oasis_cfg)))
    assert compare_namcouple(expected_namcouple(oasis_cfg), parsed) == []


def test_init_fields_travel_once(make_config):
    cfg = make_config(run={"backend": "oasis"}, worker={"modes": ["spinup"]},
                      fields=[{"name": "ssh", "direction": "ocean_to_worker", "freq": 6},
                              {"name": "ssh_init", "direction": "worker_to_ocean"}])
    entries = expected_namcouple(cfg).entries
    assert [(e.source, e.period) for e in entries] == [("GYRE_SSH", 7200), ("WORKER_GYRE_SSH_INIT", 865200)]


def test_parses_the_design_minimal_namcouple():
    nc = parse_namcouple(DESIGN_MINIMAL)
    assert (nc.nfields, nc.runtime, nc.nlogprt) == (2, 21600, (1, 0))
    first = nc.entries[0]
    assert (first.source, first.target, first.period, first.restart) == ("FOCN_SST", "FPY_SST", 3600, "rst_sst.nc")
    assert (first.src_nx, first.src_ny, first.src_grid, first.lag, first.seq) == (60, 40, "ocnt", 0, 1)
    assert render_namcouple(nc) == DESIGN_MINIMAL


@pytest.mark.parametrize("text, message", [
    ("$NFIELDS\n1\n$END\n$RUNTIME\n10\n$END\n", "no $STRINGS block"),
    ("$NFIELDS\n1\n$END\n$RUNTIME\n10\n$END\n$STRINGS\nA B 1 10 1 r.nc EXPORTED\n1 1 1 1 g g\nR 0 R 0\n"
     "SCRIPR\n$END\n", "<namcouple text>:8: entry A -> B has 1 transformations"),
    ("$NFIELDS\n1\n$END\n$RUNTIME\nten\n$END\n$STRINGS\n$END\n", "<namcouple text>:5: expected an integer"),
    ("$NFIELDS\n1\n$END\n$RUNTIME\n10\n$END\n$STRINGS\nA B 1 10 0 r.nc EXPORTED\n", "block $STRINGS has no $END"),
])
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(NamcoupleError) as err:
        parse_namcouple(text)
    assert message in str(err.value)


def _stale(cfg, tmp_path, edit):
    nc = expected_namcouple(cfg)
    path = tmp_path / "namcouple"
    path.write_text(render_namcouple(edit(nc)))
    return check_namcouple(cfg, path)


def test_stale_missing_field(oasis_cfg, tmp_path):
    problems = _stale(oasis_cfg, tmp_path, lambda nc: replace(nc, entries=nc.entries[:-1], nfields=7))
    assert problems == [f"{tmp_path / 'namcouple'}: field 'u_emu' (WORKER_GYRE_2_U_EMU -> GYRE_2_U_EMU) is missing"]


def test_stale_extra_entry(oasis_cfg, tmp_path):
    extra = replace(expected_namcouple(oasis_cfg).entries[0], source="GYRE_1_SST", target="WORKER_GYRE_1_SST")
    problems = _stale(oasis_cfg, tmp_path, lambda nc: replace(nc, entries=(*nc.entries, extra), nfields=9))
    assert problems == [f"{tmp_path / 'namcouple'}: entry GYRE_1_SST -> WORKER_GYRE_1_SST is not in the "
                        "config's field table"]


@pytest.mark.parametrize("change, message", [
    ({"period": 7200}, "coupling period (s) is 7200 in the namcouple, the config gives 14400"),
    ({"lag": 600}, "LAG (s) is 600 in the namcouple, the config gives 0"),
    ({"seq": 3}, "SEQ is 3 in the namcouple, the config gives 1"),
    ({"dst_nx": 60}, "grid size is (128, 96, 60, 96) in the namcouple, the config gives (128, 96, 128, 96)"),
])
def test_stale_entry_names_field_and_item(oasis_cfg, tmp_path, change, message):
    def edit(nc):
        return replace(nc, entries=(nc.entries[0], replace(nc.entries[1], **change), *nc.entries[2:]))
    problems = _stale(oasis_cfg, tmp_path, edit)
    assert problems == [f"{tmp_path / 'namcouple'}: field 'u' (GYRE_1_U -> WORKER_GYRE_1_U): {message}"]


def test_stale_runtime(oasis_cfg, tmp_path):
    problems = _stale(oasis_cfg, tmp_path, lambda nc: replace(nc, runtime=3600))
    assert problems == [f"{tmp_path / 'namcouple'}: $RUNTIME is 3600 s, the config gives (steps+1)*dt = 865200 s"]


def test_launch_preflight_catches_stale_namcouple(write_config, tree):
    """preprod with freq 12, then the config changes to freq 6: launch names the field before starting."""
    from bridge.config.config import load_config
    fields = [{"name": "ssh", "direction": "ocean_to_worker", "freq": 12}]
    preprod(load_config(write_config(run={"backend": "oasis"}, fields=fields)))
    changed = load_config(write_config(run={"backend": "oasis"},
                                       fields=[dict(fields[0], freq=6)]))
    problems = preflight(changed)
    namcouple = tree / "run" / "namcouple"
    assert (f"{namcouple}: field 'ssh' (GYRE_SSH -> WORKER_GYRE_SSH): coupling period (s) is 14400 in the "
            "namcouple, the config gives 7200") in problems
    assert (f"{tree / 'run' / 'namelist_cfg'}: &namobridge nn_obr_freq is 12, the config gives 6") in problems

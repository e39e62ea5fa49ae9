"""The deploy config: validation on creation, errors that name key, section and file."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from deploy_fixtures import PARAMETERS, merged

from bridge.config.config import load_config, schema_markdown
from models.settings import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ["deploy/gyre/mpi.toml", "deploy/gyre/oasis.toml", "deploy/gyre/infer.toml", "deploy/gyre/spinup_start.toml",
            "deploy/nemo/gyre.toml", "deploy/croco/basin.toml"]


def test_minimal_config_values(make_config, tree):
    cfg = make_config()
    assert cfg.run.backend == "mpi"
    assert cfg.run.run_dir == tree / "run"
    assert cfg.ocean.executable == tree / "bin" / "gyre.exe"
    assert cfg.components == ("gyre",)
    assert cfg.member_dir(1) == tree / "run"
    assert cfg.runtime_seconds == 865200.0  # (720 + 1) * 1200
    assert [f.name for f in cfg.fields] == ["ssh", "u"]
    assert cfg.worker.extra == {}


def test_ensemble_components_and_folders(make_config, tree):
    cfg = make_config(ocean={"members": 3})
    assert cfg.components == ("gyre_1", "gyre_2", "gyre_3")
    assert cfg.member_dir(2) == tree / "run" / "member_2"
    assert cfg.member_namelist(3) == tree / "run" / "member_3" / "namelist_cfg"


@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_load(example):
    cfg = load_config(REPO / example)
    assert cfg.fields and cfg.components


def test_unknown_key_names_key_section_and_file(write_config):
    path = write_config(ocean={"rnaks": 4})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: [ocean] unknown key 'rnaks' (known keys: ")


def test_unknown_key_in_field_table_names_the_field(write_config):
    data = merged()
    data["fields"][1]["frequency"] = 3
    path = write_config(data)
    with pytest.raises(ConfigError, match=r"\[\[fields\]\] #2 'u' unknown key 'frequency'"):
        load_config(path)


def test_unknown_top_level_scalar_raises(write_config):
    data = merged()
    data["backend"] = "mpi"
    with pytest.raises(ConfigError, match="unknown top-level key 'backend'"):
        load_config(write_config(data))


def test_sections_owned_by_others_pass_through(make_config):
    data = merged(worker={"train": {"lr": 0.001, "epochs": 3}})
    data["model"] = {"arch": "unet", "channels": [32, 64]}
    cfg = make_config(data)
    assert cfg.worker.extra["train"] == {"lr": 0.001, "epochs": 3}
    assert cfg.extra["model"] == {"arch": "unet", "channels": [32, 64]}


@pytest.mark.parametrize("sections, message", [
    ({"run": {"backend": "tcp"}}, "[run] key 'backend' has invalid value 'tcp' (allowed: 'mpi', 'oasis')"),
    ({"ocean": {"ranks": 0}}, "[ocean] key 'ranks' must be >= 1, got 0"),
    ({"ocean": {"ranks": "2"}}, "[ocean] key 'ranks' must be an integer, got '2'"),
    ({"run": {"dt": -5.0}}, "[run] key 'dt' must be > 0, got -5.0"),
    ({"worker": {"modes": ["train", "dream"]}}, "[worker] key 'modes' has invalid value 'dream'"),
    ({"ocean": {"required": "yes"}}, "[ocean] key 'required' must be a boolean, got 'yes'"),
])
def test_invalid_values_are_named(write_config, sections, message):
    path = write_config(**sections)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}: {message}" in str(err.value)


def test_missing_required_key_and_section(write_config):
    data = merged()
    del data["run"]["steps"]
    with pytest.raises(ConfigError, match=r"\[run\] missing required key 'steps'"):
        load_config(write_config(data))
    data = merged()
    del data["ocean"]
    with pytest.raises(ConfigError, match=r"missing required section \[ocean\]"):
        load_config(write_config(data))


def test_config_is_frozen(make_config):
    cfg = make_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run.steps = 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.fields[0].freq = 2
    with pytest.raises(TypeError):
        cfg.worker.extra["train"] = {}


@pytest.mark.parametrize("fields, modes, message", [
    ([{"name": "ssh_emu", "direction": "worker_to_ocean"}], ["train"],
     "no field has direction = 'ocean_to_worker'"),
    ([{"name": "ssh", "direction": "ocean_to_worker"}, {"name": "ssh", "direction": "ocean_to_worker"}],
     ["train"], "field 'ssh' is declared more than once"),
    ([{"name": "ssh", "direction": "worker_to_ocean"}], ["train"],
     "[[fields]] 'ssh': direction must be 'ocean_to_worker'"),
    ([{"name": "ssh", "direction": "ocean_to_worker", "freq": 2},
      {"name": "u", "direction": "ocean_to_worker", "freq": 3}], ["train"],
     "key 'freq' must be the same for these fields, because the ocean has one switch nn_obr_freq for "
     "them: ssh=2, u=3"),
    ([{"name": "ssh", "direction": "ocean_to_worker"}, {"name": "u", "direction": "ocean_to_worker"},
      {"name": "ssh_emu", "direction": "worker_to_ocean"}], ["train", "emulate"],
     "add field(s) u_emu"),
    ([{"name": "ssh", "direction": "ocean_to_worker"}, {"name": "v_init", "direction": "worker_to_ocean"}],
     ["spinup"], "[[fields]] 'v_init': the ocean does not send 'v'"),
    ([{"name": "ssh", "direction": "ocean_to_worker"}], ["train", "emulate"],
     "[worker] key 'modes' includes 'emulate' but no [[fields]] name ends in '_emu'"),
    ([{"name": "ssh", "direction": "ocean_to_worker"}, {"name": "ssh_init", "direction": "worker_to_ocean"}],
     ["train"], "[[fields]] has '<name>_init' fields but [worker] key 'modes' lacks 'spinup'"),
    ([{"name": "ssh", "direction": "ocean_to_worker", "nlev": 3},
      {"name": "ssh_emu", "direction": "worker_to_ocean"}], ["emulate"],
     "[[fields]] 'ssh_emu': key 'nlev' is 1 but 'ssh' has nlev = 3"),
    ([{"name": "SSH", "direction": "ocean_to_worker"}], ["train"], "invalid field name 'SSH'"),
])
def test_field_table_rules(write_config, fields, modes, message):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(fields=fields, worker={"modes": modes}))
    assert message in str(err.value)


def test_mode_and_parameter_rules(write_config):
    with pytest.raises(ConfigError, match="'infer' needs \\[\\[parameters\\]\\]"):
        load_config(write_config(worker={"modes": ["infer"]}))
    with pytest.raises(ConfigError, match="'ensemble' needs \\[ocean\\] members >= 2"):
        load_config(write_config(worker={"modes": ["train", "ensemble"]}))
    bad = [dict(PARAMETERS[0]), dict(PARAMETERS[0], name="tau1")]
    with pytest.raises(ConfigError, match="&namphys rn_tau0 is set by two parameters"):
        load_config(write_config(parameters=bad))
    with pytest.raises(ConfigError, match="key 'high' must be greater than 'low', got low=0.2 high=0.1"):
        load_config(write_config(parameters=[dict(PARAMETERS[0], low=0.2, high=0.1)]))


def test_oasis_needs_whole_seconds(write_config):
    with pytest.raises(ConfigError, match=r"\[run\] key 'dt': OASIS times are whole seconds, got dt = 1.5"):
        load_config(write_config(run={"backend": "oasis", "dt": 1.5}))


def test_oasis_restart_step_must_fall_on_the_coupling_periods(write_config):
    """States after step kt with MOD(kt, 12) == 0 are at OASIS times (kt - nit000 + 1)*dt: a multiple of
    the period 12*dt only when 12 divides nit000 - 1."""
    with pytest.raises(ConfigError, match=r"'ssh': with OASIS, freq = 12 must divide nit000 - 1 = 9"):
        load_config(write_config(run={"backend": "oasis", "nit000": 10}))
    assert load_config(write_config(run={"backend": "oasis", "nit000": 25})).run.nit000 == 25
    assert load_config(write_config(run={"nit000": 10})).run.nit000 == 10  # the MPI backend counts steps


def test_too_long_oasis_name_is_caught_at_load(write_config):
    long = "f" + "x" * 69  # GYRE_<long> fits in 80 characters, WORKER_GYRE_<long> does not
    with pytest.raises(ConfigError, match=f"OASIS name 'WORKER_GYRE_{long.upper()}' has 82 characters"):
        load_config(write_config(fields=[{"name": long, "direction": "ocean_to_worker"}]))


def test_unset_variable_stays_visible(write_config, monkeypatch):
    monkeypatch.delenv("OBR_TEST_UNSET", raising=False)
    cfg = load_config(write_config(ocean={"executable": "$OBR_TEST_UNSET/gyre.exe"}))
    assert str(cfg.ocean.executable) == "$OBR_TEST_UNSET/gyre.exe"
    monkeypatch.setenv("OBR_TEST_UNSET", "/opt/gyre")
    cfg = load_config(write_config(ocean={"executable": "$OBR_TEST_UNSET/gyre.exe"}))
    assert cfg.ocean.executable == Path("/opt/gyre/gyre.exe")


def test_readme_documents_every_key():
    readme = (REPO / "deploy" / "README.md").read_text()
    assert schema_markdown() in readme, "deploy/README.md key tables are stale: paste schema_markdown()"

"""[slurm] values become lines of the batch script: one line each, quoted where sbatch would split them."""
from __future__ import annotations

import shlex

import pytest

from deploy.slurm import render_script
from models.settings import ConfigError

INJECTED = "oceanbridge\n#SBATCH --wrap=touch /tmp/pwned"


def _header(cfg) -> list[str]:
    return [line for line in render_script(cfg).splitlines() if line.startswith("#SBATCH")]


def test_newline_in_job_name_is_refused(make_config, tree):
    with pytest.raises(ConfigError) as err:
        make_config(slurm={"job_name": INJECTED})
    assert str(err.value).startswith(f"{tree / 'cfg.toml'}: [slurm] key 'job_name' contains U+000A (newline) in "
                                     f"{INJECTED!r}: each value must be one line of printable text")


@pytest.mark.parametrize("key, value, shown", [
    ("partition", "gpu\r", "U+000D (carriage return)"),
    ("account", "ocean\x1b[2J", "U+001B (control character)"),
    ("time", "01:00:00\t", "U+0009 (tab)"),
    ("sbatch_args", ["--exclusive", "--mem=4G\n#SBATCH --wrap=id"], "U+000A (newline)"),
    ("setup", ["module load openmpi\nrm -rf ~"], "U+000A (newline)"),
])
def test_every_slurm_string_is_one_line(make_config, key, value, shown):
    with pytest.raises(ConfigError) as err:
        make_config(slurm={key: value})
    assert f"[slurm] key '{key}' contains {shown}" in str(err.value)


def test_tab_is_fine_in_a_setup_line(make_config):
    cfg = make_config(slurm={"setup": ["\tmodule load openmpi"]})
    assert "\tmodule load openmpi" in render_script(cfg).splitlines()


def test_output_path_with_a_space_is_quoted(make_config, tree):
    cfg = make_config(run={"run_dir": "my runs/gyre 1"}, slurm={"job_name": "my job"})
    output = tree / "my runs" / "gyre 1" / "my job-%j.out"
    header = _header(cfg)
    assert header[:3] == ["#SBATCH --job-name='my job'", "#SBATCH --time=01:00:00", f"#SBATCH --output='{output}'"]
    assert [shlex.split(line.removeprefix("#SBATCH ")) for line in header[:3]] == [
        ["--job-name=my job"], ["--time=01:00:00"], [f"--output={output}"]]


def test_sbatch_args_are_one_option_each(make_config):
    cfg = make_config(slurm={"sbatch_args": ["--exclusive", "--comment=two words", "--mail-user=a'b@x.org"]})
    header = _header(cfg)
    assert header[3:6] == ["#SBATCH --exclusive", "#SBATCH --comment='two words'",
                           "#SBATCH --mail-user='a'\"'\"'b@x.org'"]
    assert shlex.split(header[5].removeprefix("#SBATCH ")) == ["--mail-user=a'b@x.org"]


def test_newline_in_run_dir_cannot_reach_the_header(make_config):
    cfg = make_config(run={"run_dir": "runs\n#SBATCH --wrap=id"})
    with pytest.raises(ConfigError) as err:
        render_script(cfg)
    assert "batch script header line '--output=" in str(err.value)
    assert "would contain U+000A (newline); remove it from the config" in str(err.value)

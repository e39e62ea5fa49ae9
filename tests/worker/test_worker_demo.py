"""`oceanbridge demo` end to end on a shrunken copy of deploy/demo/demo.toml (slow: about 1-2 minutes)."""
from __future__ import annotations

import json
import tomllib

import pytest

from bridge.config.tomlio import absolute_paths, dump_toml
from bridge.worker.demo_page import page_problems
from deploy.demo import DEFAULT_CONFIG, main


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, gyre_exe):
    data = absolute_paths(tomllib.loads(DEFAULT_CONFIG.read_text()), DEFAULT_CONFIG.parent)
    data["demo"].update(spinup_steps=720, emulate_steps=144, out=str(tmp_path / "out"))
    data["run"].update(steps=720, run_dir=str(tmp_path / "run"))
    data["ocean"].update(members=2)
    data["worker"]["train"].update(min_steps=40)  # a few seconds of draining: the baseline starts beside it
    data["worker"]["checkpoint"]["every_steps"] = 0
    config = tmp_path / "demo.toml"
    config.write_text(dump_toml(data))
    assert main(["--config", str(config)]) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["emulation"]["emulated states sent"] == 2 * 144 // 36
    assert summary["online training"]["optimizer steps"] >= 40
    assert summary["MSE baseline"]["optimizer steps"] == summary["online training"]["optimizer steps"]
    assert summary["MSE baseline"]["began beside the worker"]  # on the members' files while the worker drained
    assert summary["online training"]["NaN states rejected"] == 0
    for c in ("ssh", "u", "v", "temp"):
        row = summary[f"scores {c}"]
        assert row["rmse_diffusion"] > 0 and row["rmse_mse"] > 0 and row["spread_skill"] > 0
        assert row["crps_diffusion"] > 0 and row["crps_mse"] > 0
        assert {t["result"] for t in summary["targets"]["by variable"][c].values()} <= {"PASS", "FAIL"}
    assert summary["online training"]["optimizer steps while coupled"] >= 0
    assert page_problems(out / "index.html", summary) == []  # the report page shows summary.json
    assert {"emulated.nc", "ensemble.nc", "mse_baseline.nc"} <= {p.name for p in out.glob("*.nc")}
    assert len(list((out / "figures").glob("*.png"))) == 17  # 4 per variable, and the days
    # the phases are plain deploy configs: relaunchable by hand
    assert (tmp_path / "run" / "train.toml").is_file() and (tmp_path / "run" / "emulate.toml").is_file()

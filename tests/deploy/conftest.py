"""Fixtures for the deploy tests: a small gyre-like run tree and a config writer."""
from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from deploy_fixtures import NAMELIST_CFG, NAMELIST_REF, merged

from bridge.config.config import load_config


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp_path with tmpl/namelist_{ref,cfg} and an executable bin/gyre.exe."""
    (tmp_path / "tmpl").mkdir()
    (tmp_path / "tmpl" / "namelist_ref").write_text(NAMELIST_REF)
    (tmp_path / "tmpl" / "namelist_cfg").write_text(NAMELIST_CFG)
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "gyre.exe"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return tmp_path


@pytest.fixture
def write_config(tree: Path):
    """write_config(data=None, name='cfg.toml', **sections) -> Path of a TOML file in the tree."""
    def _write(data: dict | None = None, name: str = "cfg.toml", **sections) -> Path:
        path = tree / name
        path.write_bytes(tomli_w.dumps(data if data is not None else merged(**sections)).encode())
        return path
    return _write


@pytest.fixture
def make_config(write_config):
    """make_config(**sections) -> a loaded DeployConfig."""
    return lambda data=None, **sections: load_config(write_config(data, **sections))

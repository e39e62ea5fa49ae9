"""eophis-style deployment: one TOML config drives the namcouple, the namelist
switches, the MPMD launch and the SLURM script.

Importing this package has no side effects and never imports torch or
pyoasis.  Entry points other modules use::

    from deploy import load_config, oasis_name
    cfg = load_config("deploy/gyre/mpi.toml")
"""
from bridge.config.config import DeployConfig, load_config
from bridge.transport.naming import oasis_name
from models.settings import ConfigError

__all__ = ["ConfigError", "DeployConfig", "load_config", "oasis_name"]

"""OASIS symbolic names and component names: one rule, checked character for character."""
from __future__ import annotations

import pytest

from bridge.transport.naming import OASIS_NAME_MAX, member_component, oasis_name


def test_ocean_endpoint_has_no_peer():
    assert oasis_name("gyre_1", "ssh") == "GYRE_1_SSH"
    assert oasis_name("nemo", "sst") == "NEMO_SST"


def test_python_endpoint_names_its_peer():
    assert oasis_name("worker", "ssh", peer="gyre_1") == "WORKER_GYRE_1_SSH"
    assert oasis_name("worker", "ssh_emu", peer="gyre_12") == "WORKER_GYRE_12_SSH_EMU"


def test_length_limit():
    assert OASIS_NAME_MAX == 80
    field = "a" * (80 - len("WORKER_GYRE_"))
    assert len(oasis_name("worker", field, peer="gyre")) == 80
    with pytest.raises(ValueError, match="has 81 characters, more than the 80 OASIS3-MCT accepts"):
        oasis_name("worker", field + "b", peer="gyre")


@pytest.mark.parametrize("component, field", [("Gyre", "ssh"), ("gyre", "ss h"), ("1gyre", "ssh"),
                                              ("gyre", "")])
def test_invalid_names(component, field):
    with pytest.raises(ValueError, match="invalid (component|field) name"):
        oasis_name(component, field)


def test_member_component():
    assert member_component("gyre", 1, 1) == "gyre"
    assert member_component("gyre", 3, 4) == "gyre_3"
    with pytest.raises(ValueError, match="member index 5 outside 1..4"):
        member_component("gyre", 5, 4)

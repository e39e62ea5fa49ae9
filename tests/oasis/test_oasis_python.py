"""The pyoasis transport (bridge/transport/oasis.py) against FakePyoasisForTests (a mock, no OASIS).

Checks what can be checked without pyoasis: the Fortran layout handed to
pyoasis (and that it is a view, not a copy), box offsets, OASIS times, names,
and the errors.  Exchanges through real OASIS are in test_oasis_exchange.py.
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from fake_pyoasis import FakePyoasisForTests

from bridge import BoxPartition, Component, FieldValueError
from bridge.errors import BridgeError, DefinitionError
from bridge.transport.oasis import OasisComponent, box_offset, oasis_seconds, to_wire
from bridge.transport.oasis_env import OasisUnavailable

BOX = BoxPartition(nx=7, ny=5, i0=2, j0=1, ni=4, nj=3)


def _component(fake, **kw):
    comp = OasisComponent("worker", pyoasis=fake, dt=600.0, nit000=1, **kw)
    comp.def_partition(BOX)
    return comp


def test_wire_layout_is_fortran_bundle_last_view():
    arr = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)  # (nlev, nj, ni)
    wire = to_wire(arr)
    assert wire.shape == (12, 2) and wire.flags.f_contiguous and np.shares_memory(wire, arr)
    for k in range(2):  # point index i fastest, then j: the order of an OASIS box partition
        assert np.array_equal(wire[:, k], [arr[k, j, i] for j in range(3) for i in range(4)])


def test_box_offset_and_time():
    assert box_offset(BOX) == 1 * 7 + 2
    assert oasis_seconds(0, 1, 600.0) == 0 and oasis_seconds(12, 1, 600.0) == 7200  # state after step 12
    with pytest.raises(BridgeError, match="68 years"):
        oasis_seconds(4_000_000, 0, 600.0)
    with pytest.raises(BridgeError, match="negative"):
        oasis_seconds(-1, 1, 600.0)


def test_put_hands_pyoasis_the_callers_memory_at_oasis_time():
    fake = FakePyoasisForTests()
    comp = _component(fake)
    sst = comp.def_field("sst", "out", nlev=2, peer="gyre_1")
    comp.enddef()
    arr = np.random.default_rng(0).standard_normal((2, 3, 4))
    sst.put(4, arr)
    what, name, t, sent = fake.events[-1]
    assert (what, name, t) == ("put", "WORKER_GYRE_1_SST", 2400)
    assert ("box", 9, 4, 3, 7) in fake.events and ("var", "WORKER_GYRE_1_SST", 20, 2) in fake.events
    assert np.shares_memory(sent, arr) and np.array_equal(sent, to_wire(arr))
    assert sst.last_info == 4


def test_a_partition_with_gaps_tells_oasis_the_global_size():
    """As NEMO's cpl_oasis3 passes ig_size: with land-only subdomains removed OASIS needs the global size."""
    fake = FakePyoasisForTests()
    OasisComponent("worker", pyoasis=fake, dt=600.0, nit000=1).def_partition(BOX, gaps=True)
    assert ("box", 9, 4, 3, 7, 7 * 5) in fake.events
    fake = FakePyoasisForTests()
    _component(fake)
    assert ("box", 9, 4, 3, 7) in fake.events  # without gaps: as before


def test_get_writes_into_out_in_place():
    fake = FakePyoasisForTests()
    comp = _component(fake)
    emu = comp.def_field("ssh_emu", "in", nlev=1)
    comp.enddef()
    expected = np.arange(12, dtype=np.float64).reshape(1, 3, 4) + 0.5
    fake.inbox["WORKER_SSH_EMU"] = to_wire(expected).copy(order="F")
    out = np.zeros((1, 3, 4))
    got = emu.get(1, out)
    assert got is out and np.array_equal(out, expected)
    assert ("get", "WORKER_SSH_EMU", 600) in fake.events


def test_get_at_a_time_that_is_not_a_coupling_time_is_an_error():
    fake = FakePyoasisForTests(get_info=0)
    comp = _component(fake)
    emu = comp.def_field("ssh_emu", "in")
    comp.enddef()
    with pytest.raises(BridgeError, match=r"ssh_emu.*step 2 \(t = 1200 s\) received nothing \(OASIS info 0\)"):
        emu.get(2)


def test_skipped_coupling_time_is_named_before_oasis_aborts():
    fake = FakePyoasisForTests(periods={"WORKER_GYRE_SSH": 600, "WORKER_GYRE_SSH_EMU": 1200})
    comp = _component(fake)
    ssh = comp.def_field("ssh", "in", peer="gyre")
    emu = comp.def_field("ssh_emu", "out", peer="gyre")
    comp.enddef()
    fake.inbox["WORKER_GYRE_SSH"] = np.zeros((12, 1), order="F")
    ssh.get(0)              # t = 0: the state arrives; the emulated state of t = 0 is not put (skipped)
    ssh.get(1)              # t = 600: emu's period is 1200, nothing missed yet
    with pytest.raises(BridgeError, match=r"field 'ssh_emu' \(OASIS 'WORKER_GYRE_SSH_EMU', period 1200 s\).*missed "
                                          r"a coupling time before t = 1200 s.*its last exchange: never"):
        ssh.get(2)
    emu.put(2, np.zeros((3, 4)))  # the late field itself may still go (OASIS checks the others)
    assert emu.last == 1200


def test_field_missing_from_namcouple_is_named():
    comp = _component(FakePyoasisForTests(missing={"WORKER_GYRE_2_U"}))
    with pytest.raises(DefinitionError, match="field 'u'.*OASIS name 'WORKER_GYRE_2_U' is not in the namcouple"):
        comp.def_field("u", "in", nlev=3, peer="gyre_2")


def test_usage_errors():
    fake = FakePyoasisForTests()
    comp = OasisComponent("worker", pyoasis=fake)
    with pytest.raises(BridgeError, match="def_field before def_partition"):
        comp.def_field("sst", "out")
    comp.def_partition(BOX)
    sst = comp.def_field("sst", "out")
    with pytest.raises(BridgeError, match="put before enddef"):
        sst.put(1, np.zeros((3, 4)))
    with pytest.raises(BridgeError, match=r"needs the model time step.*OBRIDGE_DT"):
        comp.enddef()
    comp.def_time(1, 60.0)
    comp.enddef()
    with pytest.raises(BridgeError, match=r"array shape \(4, 3\) does not match"):
        sst.put(1, np.zeros((4, 3)))
    bad = np.zeros((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(FieldValueError, match="put at step 1 holds 1 NaN/Inf"):
        sst.put(1, bad)
    with pytest.raises(BridgeError, match="get is not allowed"):
        sst.get(1)
    comp.finalize()
    assert fake.events[-1] == ("terminate",)


def test_time_axis_from_environment(monkeypatch):
    monkeypatch.setenv("OBRIDGE_DT", "3600")
    monkeypatch.setenv("OBRIDGE_NIT000", "5")
    comp = OasisComponent("worker", pyoasis=FakePyoasisForTests())
    assert (comp.dt, comp.nit000) == (3600.0, 5)


def test_backend_oasis_without_pyoasis_names_the_fix(monkeypatch):
    monkeypatch.delenv("OASIS_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "pyoasis", None)  # makes 'import pyoasis' fail
    with pytest.raises(OasisUnavailable, match=r"(?s)OASIS_DIR is not set.*pyoasis.*PYTHONPATH.*LD_LIBRARY_PATH"):
        Component("worker", backend="oasis")


def test_unrelated_pypi_pyoasis_is_detected(monkeypatch, tmp_path):
    monkeypatch.setenv("OASIS_DIR", str(tmp_path))
    impostor = types.ModuleType("pyoasis")  # like the PyPI package of that name: no OASIS API
    impostor.__file__ = "/site-packages/pyoasis/__init__.py"
    monkeypatch.setitem(sys.modules, "pyoasis", impostor)
    with pytest.raises(OasisUnavailable, match="not OASIS3-MCT's pyoasis"):
        Component("worker", backend="oasis")


def test_given_oasis_name_is_the_variable_name():
    """[[fields]] oasis_name: the worker declares the namcouple's fixed name (eophis/Morays setups)."""
    fake = FakePyoasisForTests(missing={"WORKER_GYRE_1_SST"})  # the default name is not in that namcouple
    comp = _component(fake)
    sst = comp.def_field("sst", "in", nlev=2, peer="gyre_1", oasis_name="E_IN_1")
    corr = comp.def_field("corr", "out", peer="gyre_1")  # no name given: the default
    assert (sst.wire, corr.wire) == ("E_IN_1", "WORKER_GYRE_1_CORR")
    assert ("var", "E_IN_1", 21, 2) in fake.events and ("var", "WORKER_GYRE_1_CORR", 20, 1) in fake.events
    with pytest.raises(DefinitionError, match=r"field 'sst' of component 'worker' \(world rank 0\): its OASIS "
                                              r"name 'WORKER_GYRE_1_SST' is not in the namcouple"):
        _component(fake).def_field("sst", "in", peer="gyre_1")  # without the name: not in that namcouple


@pytest.mark.parametrize("name, message", [
    ("E IN", r"field 'sst' \(peer 'gyre_1'\) of component 'worker' \(world rank 0\): invalid OASIS name 'E IN'"),
    ("E" * 81, r"field 'sst' \(peer 'gyre_1'\) of component 'worker' .*: OASIS name 'E+' has 81 characters"),
])
def test_bad_given_oasis_name_is_refused_naming_the_field(name, message):
    comp = _component(FakePyoasisForTests())
    with pytest.raises(DefinitionError, match=message):
        comp.def_field("sst", "in", peer="gyre_1", oasis_name=name)


def test_two_fields_with_one_oasis_name_are_refused():
    comp = _component(FakePyoasisForTests())
    comp.def_field("sst", "in", peer="gyre_1", oasis_name="E_IN_1")
    with pytest.raises(DefinitionError, match=r"field 'sss' \(peer 'gyre_1'\) of component 'worker' .*: its OASIS "
                                              r"name 'E_IN_1' is already that of field 'sst' \(peer 'gyre_1'\)"):
        comp.def_field("sss", "in", peer="gyre_1", oasis_name="E_IN_1")

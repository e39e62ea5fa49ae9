"""The wire protocol (version 4): chunks that tile every route, the NaN policy's verdict
reaching the receiver, and the protocol version checked at end of definitions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmd_jobs import PYTHON, REPO, run_mpmd

from bridge import handshake
from bridge.errors import ProtocolError
from bridge.handshake import CHUNK, OUT, FieldDef, check_protocol, chunks, chunks_per_level, decode, encode
from bridge.partition import BoxPartition

JOB = str(REPO / "tests" / "bridge" / "wire_job.py")
FIX = "rerun `oceanbridge install` and rebuild the model"


@st.composite
def routes_and_chunk_sizes(draw):
    ni, nj = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    i0, j0 = draw(st.integers(0, 10)), draw(st.integers(0, 10))
    box = BoxPartition(i0 + ni + 3, j0 + nj + 2, i0, j0, ni, nj)
    return box, draw(st.integers(1, 4)), draw(st.integers(1, 400))


@settings(max_examples=300, deadline=None)
@given(routes_and_chunk_sizes())
def test_chunks_tile_each_route_once_in_packed_order(case):
    box, nlev, size = case
    seen = np.zeros((nlev, box.nj, box.ni), dtype=int)
    offset = 0
    for c in chunks(box, nlev, size):
        seen[c.lev, c.row0:c.row0 + c.nrows, :] += 1
        assert c.offset == offset  # chunks follow each other in the packed route, level by level
        assert c.nrows * box.ni <= max(size, box.ni)  # at most `size` points, or one longer row
        offset += c.nrows * box.ni
    assert (seen == 1).all()
    per_level = [c.nrows for c in chunks(box, nlev, size) if c.lev == 0]
    assert len(per_level) == chunks_per_level(box, size) == -(-box.nj // max(1, size // box.ni))  # the fewest
    assert max(per_level) - min(per_level) <= 1  # as even as possible


@settings(max_examples=100, deadline=None)
@given(st.integers(1, CHUNK), st.integers(1, 3000), st.integers(1, 3))
def test_chunks_never_exceed_chunk_points(ni, nj, nlev):
    box = BoxPartition(ni, nj, 0, 0, ni, nj)
    found = chunks(box, nlev)
    assert all(c.nrows * ni <= CHUNK for c in found)
    assert sum(c.nrows for c in found) == nj * nlev


def test_large_3d_route_chunks():
    """A 256 x 128 level (half the benchmark's 3-D ocean tile): 32768 points, one chunk per level;
    the 1024 x 512 2-D tile: 524288 points, one chunk; a 2048 x 1024 level: 2 chunks of 512 rows."""
    assert CHUNK == 1048576
    assert len(chunks(BoxPartition(256, 256, 0, 0, 256, 128), 75)) == 75
    assert [c.nrows for c in chunks(BoxPartition(1024, 1024, 0, 512, 1024, 512), 1)] == [512]
    assert [c.nrows for c in chunks(BoxPartition(2048, 1024, 0, 0, 2048, 1024), 2)] == [512] * 4


def test_records_carry_the_protocol_version():
    box = BoxPartition(8, 4, 0, 0, 8, 4)
    data = encode("ocean", box, [FieldDef("sst", OUT, 1)])
    assert decode(0, data).protocol == handshake.PROTOCOL_VERSION == 4
    unversioned = data[:handshake.RECORD_LEN - handshake.VERSION_WIDTH] + b" " * handshake.VERSION_WIDTH \
        + data[handshake.RECORD_LEN:]  # as today's code wrote it: a blank tail
    assert decode(0, unversioned).protocol == handshake.UNVERSIONED == 1
    assert decode(0, unversioned).box == box


@pytest.mark.parametrize("version,age", [(1, "older"), (3, "older"), (5, "newer")])
def test_version_mismatch_names_rank_component_versions_and_fix(version, age):
    box = BoxPartition(8, 4, 0, 0, 8, 4)
    defs = [decode(0, encode("a", box, [])), decode(1, encode("b", box, [], protocol=version))]
    with pytest.raises(ProtocolError) as err:
        check_protocol(defs)
    assert str(err.value) == (f"rank 1 (component 'b') speaks bridge protocol version {version}, {age} than this "
                              f"rank's version 4: the two sides were built from different oceanbridge versions; {FIX}")


@pytest.mark.mpi
@pytest.mark.parametrize("put_mode", ["copy", "direct"])
def test_nan_policy_error_reaches_the_receiver_both_directions(fortran_build, put_mode):
    """The Fortran ocean puts 'a2' holding 3 NaN (kinfo): its put fails, the Python get raises naming
    field, step, sending rank and count; the Python worker puts 'c2' holding 2 NaN and an Inf: the
    Fortran get returns OBR_ERR_VALUE (-3) saying the same. The next step is exchanged bit-exactly."""
    ocean = [str(fortran_build / "bin" / "obr_exchange_ocean"), "13", "11", "4", "1", "1", "2", "nan3"]
    run = run_mpmd([(1, ocean), (1, [PYTHON, JOB, "worker", "13", "11", "4", "nan3"])],
                   env={"OBRIDGE_NAN_POLICY": "error", "OBRIDGE_PUT_MODE": put_mode}, timeout=120)
    assert run.returncode == 0, run.stdout
    out = run.stdout
    assert "put kinfo=-3 message: field 'a2': put at step 1 holds 3 NaN/Inf value(s)" in out, out
    assert ("worker get raised: field 'a2' of component 'worker' (rank 1): get at step 1: the put of world rank 0 "
            "of component 'ocean' held 3 NaN/Inf value(s) and was rejected (its NaN policy is error); "
            "the received array is undefined") in out, out
    assert "worker put raised: field 'c2' of component 'worker' (rank 1): put at step 1 holds 3 NaN/Inf" in out, out
    assert ("get kinfo=-3 message: field 'c2': get at step 1: the put of world rank 1 of component 'worker' held "
            "3 NaN/Inf value(s) and was rejected (its NaN policy is error); the received array is undefined") in out
    assert "ocean rank 0: 2 steps exchanged bit-exactly" in out and "worker done" in out, out


@pytest.mark.mpi
@pytest.mark.parametrize("version,age", [("blank", "version 1, older"), ("5", "version 5, newer")])
def test_python_component_of_another_protocol_is_named(version, age):
    run = run_mpmd([(1, [PYTHON, JOB, "pair", "a", "2"]), (1, [PYTHON, JOB, "pair", "b", version])], timeout=120)
    assert run.returncode != 0
    assert (f"oceanbridge ERROR (component 'a', world rank 0): end of definitions: rank 1 (component 'b') speaks "
            f"bridge protocol {age} than this rank's version 4: the two sides were built from different "
            f"oceanbridge versions; {FIX}") in run.stdout, run.stdout


@pytest.mark.mpi
def test_fortran_rank_names_an_older_python_component(fortran_build):
    ocean = [str(fortran_build / "bin" / "obr_exchange_ocean"), "13", "11", "4", "1", "1", "2"]
    run = run_mpmd([(1, ocean), (1, [PYTHON, JOB, "worker", "13", "11", "4", "older"])], timeout=120)
    assert run.returncode != 0
    assert ("oceanbridge ERROR (component 'ocean', world rank 0): end of definitions: rank 1 (component 'worker') "
            f"speaks bridge protocol version 1, older than this rank's version 4: the two sides were built from "
            f"different oceanbridge versions; {FIX}") in run.stdout, run.stdout

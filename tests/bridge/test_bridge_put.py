"""A Python put, in either put mode, leaves the caller free to overwrite its array as soon as it
returns: the copy mode has copied it, the direct mode has waited for the receiver."""
from __future__ import annotations

import pytest
from mpmd_jobs import PYTHON, REPO, run_mpmd

JOB = str(REPO / "tests" / "bridge" / "put_reuse_job.py")


@pytest.mark.mpi
@pytest.mark.parametrize("mode,buffers", [("copy", 2), ("direct", 0)])
@pytest.mark.parametrize("wait", ["spin", "yield"])
def test_array_reused_right_after_put_arrives_as_it_was(wait, mode, buffers):
    # 128 x 96 points: 96 KiB, above Open MPI's eager limits, so the data leaves only when the receiver asks
    run = run_mpmd([(1, [PYTHON, JOB, "sender", "128", "96"]), (1, [PYTHON, JOB, "receiver", "128", "96"])],
                   env={"OBRIDGE_WAIT": wait, "OBRIDGE_PUT_MODE": mode}, timeout=120)
    assert run.returncode == 0, run.stdout
    assert "receiver: step 1 intact True, step 2 intact True" in run.stdout, run.stdout
    assert f"sender: {mode} put, {buffers} packing buffer(s)" in run.stdout, run.stdout


@pytest.mark.mpi
def test_direct_put_to_a_receiver_that_never_gets_stops_at_the_timeout():
    run = run_mpmd([(1, [PYTHON, JOB, "sender", "128", "96"]), (1, [PYTHON, JOB, "absent", "128", "96"])],
                   env={"OBRIDGE_PUT_MODE": "direct", "OBRIDGE_TIMEOUT": "2"}, timeout=60)
    assert run.returncode != 0
    assert ("oceanbridge ERROR (component 'sender', world rank 0): field 'f' of component 'sender' (rank 0): "
            "the send of step 1 to rank(s) [1] of component 'receiver' did not complete; is the peer alive and "
            "calling get? (timeout 2 s)") in run.stdout, run.stdout

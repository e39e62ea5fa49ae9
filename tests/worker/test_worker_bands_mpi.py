"""Sampling across worker ranks under mpirun: each rank denoises its j-band with halos of the iterate
exchanged at every network call (models/bands.py), and the M-rank sample equals, bit for bit, the
1-rank sample of the same tiling and seed (tests/worker/bands_job.py; diffusion, diffusion on
spectrally whitened targets with colored noise, and the MSE baseline)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from mpmd_jobs import PYTHON, run_mpmd

JOB = str(Path(__file__).with_name("bands_job.py"))
LINE = re.compile(r"RESULT rank=(\d)/(\d) variant=(\w+) rows=\S+ max_abs_diff=(\S+) equal=(\w+) "
                  r"no_halo_diff=(\S+) exchange_calls=(\d+)")


@pytest.mark.parametrize("ranks", [2, 3])
def test_m_rank_sample_equals_one_rank_sample(ranks):
    res = run_mpmd([(ranks, [PYTHON, JOB])], timeout=120, env={"OMP_NUM_THREADS": "1"})
    results = LINE.findall(res.stdout)
    assert res.returncode == 0 and len(results) == 3 * ranks, res.stdout
    for rank, size, variant, diff, equal, no_halo, calls in results:
        assert equal == "True" and float(diff) == 0.0, (rank, variant)
        assert int(calls) > 0  # every rank exchanged halos
        assert float(no_halo) > 1e-3, (rank, variant)  # the halo matters: without it the band differs


def test_a_missing_rank_ends_the_exchange_with_a_message():
    res = run_mpmd([(2, [PYTHON, JOB, "--stall"])], timeout=120, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout
    assert re.search(r"STALLED rank=0: halo exchange: worker rank 0 could not (send|receive) rows \d+\.\.\d+ "
                     r"(to|from) worker rank 1 within 3 s \(\[run\] ranks_timeout\)", res.stdout), res.stdout

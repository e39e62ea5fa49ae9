"""The default configuration eddies, is (weakly) chaotic and has no grid noise.

Slow (about 2 minutes on a free core): gyre/tools/twin.py's protocol on the default configuration, a spin-up of
2 model years from rest, then twin runs of SPAN days from the same state, one with a 1e-4 m bump of ssh at the
basin's centre. The bump first radiates gravity waves and leaves a slowly decaying balanced remnant (the
difference shrinks for about 60 days), then the difference grows exponentially. Measured: e-folding 113 days,
kinetic energy std/mean 17%, 0.03% of the enstrophy in the top third of the wavenumbers, layer >= 338 m
(gyre/README.md, "How chaotic", with the other configurations tried).
"""
from __future__ import annotations

import gyre_testlib  # noqa: F401  (puts gyre/tools on the path)
import pytest
from twin import twin

SPINUP_DAYS = 730
SPAN = 180                  # days of twin runs
EFOLD_MAX_DAYS = 200.0      # measured 113


@pytest.mark.slow
@pytest.mark.mpi
def test_default_configuration_is_eddying_and_chaotic(gyre_exe, tmp_path):
    fig = twin(tmp_path, {}, SPINUP_DAYS, SPAN, eps=1e-4, timeout=3600)
    assert fig["hmin"] > 100.0, f"the layer nearly outcrops: {fig}"
    assert fig["cfl"] < 1.0, fig
    assert fig["ke_cv"] > 0.05, f"the kinetic energy does not fluctuate: {fig}"
    assert fig["noise"] < 0.01, f"grid noise: more than 1% of the enstrophy in the highest wavenumbers: {fig}"
    assert fig["efold_days"] < EFOLD_MAX_DAYS, f"the perturbation grows too slowly: {fig}"
    assert fig["diff_last"] > 2.0 * fig["diff_min"], f"the perturbation does not grow: {fig}"

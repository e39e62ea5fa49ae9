"""Two parameters on the gyre: the infer mode's posterior over (tau0, f0), calibrated on held-out members.

Which two (measured with gyre/tools/gyrerun.py runs outside the worker).  Central differences x/÷ 1.3 of the
last state of a 5-day 32 x 32 run (30 km, the members' physics: rdrag 2e-5 s-1, trelax 2 d) around tau0
0.12 N m-2, gprime 0.03 m s-2, ahm 50 m2 s-1, f0 7e-5 s-1, beta 2e-11, h0 600 m, each field scaled by its
spatial std.  RMS change per unit log-parameter: tau0 0.90, h0 0.81, rdrag 0.63, f0 0.48, gprime 0.40, beta
0.05, trelax and ahm 0.000 (the temperature stays on its relaxation profile; the Laplacian viscosity is
negligible beside this drag).  tau0 and rdrag move the state along nearly one direction (cosine -0.955: near
equilibrium the state sees tau0 / rdrag), as do tau0 and h0 (-0.89); the smallest singular value of each
pair's Jacobian (its worst-constrained combination) is 0.155 for (tau0, rdrag), 0.28 (tau0, h0), 0.36
(tau0, gprime) and 0.45 for (tau0, f0), the best pair.  Coupled runs of this test agreed: with rdrag the
posterior is a ridge (correlation +0.97, rdrag std 0.88 of the prior's), with gprime its std stayed at
0.61-0.97 of the prior's, with f0 it reached 0.47.

The job: K = MEMBERS gyre members (Latin hypercube over the box) stream to one worker in train + infer mode;
the last HOLDOUT are held out (``holdout_members``): the posterior never trains on them, and their distinct
states (up to HOLDOUT_MAX, from every coupling step) are its held-out observations.  The observation is a
separate run at tau0 = 0.08 N m-2, f0 = 9e-5 s-1.  Many members with few states each: states of one member
share θ, and with 72 training members or fewer the held-out ranks were far from uniform (KS p < 1e-4); the
learning rate decays over the last steps (``lr_decay_steps``): without it the posterior is the last iterate of a
constant-rate Adam, whose location jitters by a fair part of its (narrow) width.

Measured (loaded 2-core machine, 3-4 min a run; the online training depends on thread timing, so runs
differ): both marginals contract to 0.11-0.22 of the prior's std and the coverage error stays at 0.02-0.09,
but the SBC KS p-values pass the 0.01 threshold in one run of three (128 members: 0.14 / 0.19; then 3e-7 for
tau0; 192 members: 0.04 / 0.004): a location bias of the sharp tau0 / f0 posteriors, a fraction of their
width, that varies from run to run.  See bridge/worker/README.md.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from test_worker_infer import STEPS, N
from worker_fixtures import REPO, launch, write_config

MEMBERS, HOLDOUT, HOLDOUT_MAX, FREQ = 192, 48, 96, 12
TRUTH = {"tau0": 0.08, "f0": 9e-5}
BOX = {"tau0": (0.05, 0.2), "f0": (4e-5, 1.2e-4)}
UNITS = {"tau0": "N m-2", "rdrag": "s-1", "gprime": "m s-2", "f0": "s-1"}
PHYSICS = "&namphys\n" + "".join(f"   {k} = {v}\n" for k, v in {"rn_rdrag": 2e-5, "rn_trelax": 2.0}.items()
                                 if k[3:] not in BOX) + "/\n"
KS_MIN = 0.01  # see test_held_out_calibration
INFER = f"""
[worker.infer]
observation = "obs/gyre_fields.nc"
samples = 2000
min_steps = 2000
lr_decay_steps = 1500
norm_warmup_steps = 200
holdout_members = {HOLDOUT}
holdout_max = {HOLDOUT_MAX}
holdout_samples = 500
coverage_tol = 0.15
""" + "".join(f"""
[[parameters]]
name = "{name}"
block = "namphys"
var = "rn_{name}"
low = {lo}
high = {hi}
units = "{UNITS[name]}"
""" for name, (lo, hi) in BOX.items())


def observe(folder: Path) -> Path:
    """A gyre run at TRUTH with the members' physics; its fields with the true θ as global attributes."""
    import sys
    sys.path.insert(0, str(REPO / "gyre" / "tools"))
    from gyrerun import make_rundir, namelist_text, run_gyre
    blocks = {"namrun": {"nn_itend": STEPS, "nn_write": STEPS, "nn_diag": 0, "ln_rst_end": False},
              "namdom": {"nn_nx": N, "nn_ny": N, "rn_dx": 30000.0, "rn_dy": 30000.0}}
    truth = "".join(f"\n   rn_{k} = {v}" for k, v in TRUTH.items())
    rundir = make_rundir(folder, raw_cfg=namelist_text(blocks) + PHYSICS.replace("&namphys", "&namphys" + truth))
    res = run_gyre(rundir, 1, timeout=120)
    assert res.returncode == 0, res.output
    with netCDF4.Dataset(rundir / "gyre_fields.nc", "a") as ds:
        ds.setncatts(TRUTH)
    return rundir / "gyre_fields.nc"


@pytest.fixture(scope="module")
def inferred(tmp_path_factory, gyre_exe) -> tuple[Path, float]:
    run_dir = tmp_path_factory.mktemp("infer_two")
    observe(run_dir / "obs")
    config = write_config(run_dir, steps=STEPS, freq=FREQ, n=N, members=MEMBERS, modes=("train", "infer"),
                          parameters=False, extra=INFER)
    template = run_dir / "template_cfg"
    template.write_text(template.read_text() + PHYSICS)
    config.write_text(config.read_text().replace("capacity = 64", "capacity = 4096")
                      .replace("batch_size = 4", "batch_size = 16"))
    t0 = time.perf_counter()
    res = launch(config, timeout=900)
    wall = time.perf_counter() - t0
    (run_dir / "launch.log").write_text(res.stdout)
    assert res.returncode == 0, res.stdout[-5000:]
    return run_dir, wall


@pytest.mark.slow
def test_posterior_contracts_on_both_parameters(inferred):
    run_dir, wall = inferred
    with netCDF4.Dataset(run_dir / "posterior.nc") as ds:
        ds.set_auto_mask(False)
        s = {name: ds[name][:] for name in BOX}
    corr = np.corrcoef(*s.values())[0, 1]
    lines = []
    for name, (lo, hi) in BOX.items():
        prior_std = (hi - lo) / np.sqrt(12)
        lines.append(f"{name}: truth {TRUTH[name]}, posterior mean {s[name].mean():.4g} std {s[name].std():.3g} "
                     f"(prior std {prior_std:.3g}, ratio {s[name].std() / prior_std:.2f})")
    print(f"\ntwo parameters, job {wall:.0f} s:\n  " + "\n  ".join(lines) + f"\n  posterior correlation {corr:+.2f}")
    for name, (lo, hi) in BOX.items():
        prior_std = (hi - lo) / np.sqrt(12)
        assert s[name].std() < 0.5 * prior_std, name
        assert abs(s[name].mean() - TRUTH[name]) < 3 * s[name].std() + 0.02 * (hi - lo), name
    assert (run_dir / "posterior.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="issue 21 target not met: the two-parameter posterior's SBC ranks pass the "
                   "uniformity test in about 1 run of 3 (KS p < 0.01, or coverage error above the tolerance); the "
                   "assertion states the target")
def test_held_out_calibration(inferred):
    """SBC over >= 50 held-out observations.  Threshold: each KS p-value above 0.01 — a calibrated posterior
    fails that with probability 1 % per parameter (a uniformity test at 1 %; states of one member share θ, so
    the ranks are not independent and the test is if anything stricter than nominal), while an under-dispersed
    one gives p < 1e-3 (tests/worker/test_worker_infer_calibration.py)."""
    run_dir, _ = inferred
    summary = json.loads((run_dir / "worker_summary.json").read_text())["posterior"]["calibration"]
    with netCDF4.Dataset(run_dir / "posterior.nc") as ds:
        ds.set_auto_mask(False)
        b = ds.dimensions["holdout"].size
        members = sorted(set(ds["holdout_member"][:].tolist()))
        pvals = {name: float(ds[f"{name}_sbc_ks_pvalue"][...]) for name in BOX}
        err = float(ds["coverage_error"][...])
    print(f"\ncalibration on {b} held-out observations of members {members}: SBC KS p {pvals}, coverage "
          f"{summary['coverage']}, coverage error {err:.3f}, TARP ATC {summary['tarp_atc']:.3f} "
          f"(KS p {summary['tarp_ks_pvalue']:.3g}), calibrated (tol {summary['coverage_tol']}): "
          f"{summary['calibrated']}")
    # the reservoir of HOLDOUT_MAX states may keep none of a held-out member's: most members, never a trained one
    assert b >= 50 and set(members) <= set(range(MEMBERS - HOLDOUT, MEMBERS)) and len(members) >= HOLDOUT // 2
    assert summary["sbc_ks_pvalue"] == pytest.approx(pvals)
    assert all(p > KS_MIN for p in pvals.values()), pvals
    for png in ("posterior_sbc.png", "posterior_coverage.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

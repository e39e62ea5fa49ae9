"""The demo's report page (bridge/worker/demo_page.py) against its summary: the numbers, the images,
nothing loaded from elsewhere; and the same page in a real headless Chromium (skipped without it)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bridge.worker.demo_page import cell_text, expected_keys, page_problems, write_page
from bridge.worker.demo_targets import FAIL, PASS, TARGETS, evaluate, verdicts
from bridge.worker.report import caption, figures, scores
from models.metrics import crps_fair_pointwise

CHANNELS = ("ssh", "temp")
SAMPLES = 4


def synthetic_emulation(seed: int = 0, k: int = 2, t: int = 3, n: int = 16) -> tuple[dict, np.ndarray]:
    """An emulation record shaped like ``read_emulation``'s, and an MSE baseline (smoothed truth)."""
    rng = np.random.default_rng(seed)
    shape = (k, t, len(CHANNELS), n, n)
    start = rng.normal(size=shape)
    ocean = start + rng.normal(scale=0.3, size=shape)
    samples = ocean[None] + rng.normal(scale=0.3, size=(SAMPLES, *shape))
    mask = np.ones((n, n), bool)
    mask[:2, :3] = False
    em = {"start": start, "ocean": ocean, "emulated": samples[0], "mean": samples.mean(0),
          "spread": samples.std(0), "crps": crps_fair_pointwise(samples, ocean),
          "steps": np.arange(1, t + 1) * 36, "mask": mask, "members": ["gyre_1", "gyre_2"], "dx": 3e4, "dy": 3e4}
    mse = start + 0.5 * (ocean - start)
    return em, mse


def demo_summary(out: Path) -> dict:
    """A summary shaped like ``demo_report.report``'s, from synthetic scores and the project's own figures."""
    em, mse = synthetic_emulation()
    table = scores(em, mse, CHANNELS, SAMPLES)
    pngs = figures(em, mse, CHANNELS[:1], out / "figures", em["spread"][0, -1, :1])
    return {"setup": {"grid": "16x16", "members": 2, "coupling period (days)": 1.0},
            "online training": {"optimizer steps": 600, "optimizer steps while coupled": 412,
                                "buffer": {"size": 64}, "loss (last 20%)": 0.0123456},
            **{f"scores {c}": row for c, row in table.items()},
            "what beat what": verdicts(table), "targets": evaluate(table),
            "figures": [{"file": p.relative_to(out).as_posix(), "caption": caption(p)} for p in pngs],
            "timings_s": {"emulation": 12.5, "total": 99.25}}


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    summary = json.loads(json.dumps(demo_summary(out)))  # what summary.json holds
    return write_page(summary, out), summary


def test_targets_are_checked_from_one_table():
    row = {"crps_diffusion": 0.15, "crps_mse": 0.19, "highk_diffusion": 1.4, "highk_mse": 0.45,
           "spread_skill": 0.69}
    checks = evaluate({"ssh": row})["by variable"]["ssh"]
    assert set(checks) == {t.name for t in TARGETS}
    assert {n: c["result"] for n, c in checks.items()} == {
        "crps": PASS, "high_k": PASS, "high_k_mse_lower": PASS, "spread_skill": FAIL}
    assert checks["crps"]["measured"] == "crps_diffusion 0.15 < crps_mse 0.19"
    assert evaluate({"ssh": {}})["by variable"]["ssh"]["crps"]["result"] == FAIL  # not measured: not passed
    assert verdicts({"ssh": row})["ssh"][0] == "diffusion CRPS 0.15 < MSE baseline 0.19: diffusion better"


def test_page_matches_its_summary(page):
    path, summary = page
    text = path.read_text()
    assert page_problems(path, summary) == []
    images = re.findall(r'<img src="([^"]+)"', text)
    assert images == [f["file"] for f in summary["figures"]] and len(images) == 5  # 4 of ssh, and the days
    assert all((path.parent / src).is_file() for src in images)
    cells = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', text))
    for key in expected_keys(summary):  # every target's value and every score, as summary.json has it
        node = summary
        for part in key.split("/"):
            node = node[part]
        assert float(cells[key]) == pytest.approx(node, rel=5e-4), key
    assert cells["online training/optimizer steps while coupled"] == "412"
    assert summary["targets"]["result"] in text and "<script" not in text and "http" not in text


@pytest.mark.parametrize("breakage, expected", [
    (lambda page, s: (page.parent / s["figures"][0]["file"]).unlink(), "does not exist"),
    (lambda page, s: s["figures"][1].update(file="figures/elsewhere.png"), "is not one of summary.json's"),
    (lambda page, s: s["scores ssh"].update(crps_mse=s["scores ssh"]["crps_mse"] * 1.01), "scores ssh/crps_mse"),
    (lambda page, s: s["targets"]["by variable"]["temp"]["crps"].update(value=-1.0), "temp/crps/value"),
    (lambda page, s: s["scores temp"].update(new_score=1.0), "scores temp/new_score is not shown"),
    (lambda page, s: page.write_text(page.read_text().replace("</body>", '<script src="https://x/y.js"></script>'
                                                              "</body>")), "loads from elsewhere"),
])
def test_a_broken_page_is_caught(tmp_path, breakage, expected):
    summary = json.loads(json.dumps(demo_summary(tmp_path)))
    page = write_page(summary, tmp_path)
    assert page_problems(page, summary) == []
    breakage(page, summary)
    problems = page_problems(page, summary)
    assert problems and any(expected in p for p in problems), problems


def test_cell_text_keeps_integers_and_words():
    assert cell_text(17520) == "17520" and cell_text(0.012345678) == "0.01235" and cell_text(None) == "n/a"
    assert cell_text("64x64") == "64x64" and cell_text({"a": 1}) == '{"a": 1}'


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


PROBE = ("<script>window.addEventListener('load', () => { for (const i of document.images) "
         "i.setAttribute('data-natural-width', i.naturalWidth); document.body.dataset.probed = 'yes'; });</script>")


@pytest.mark.skipif(chromium() is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")
def test_page_opens_in_headless_chromium(page, tmp_path):
    """The page from the file system, no server: every image loads (naturalWidth > 0).  A copy of it with
    a probe script (the page itself has none) sits next to it, so that the relative paths are the same."""
    path, summary = page
    probe = path.with_name("probe.html")
    probe.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000"]
    dom = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'data-probed="yes"' in dom
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == len(summary["figures"]) and all(w > 0 for w in widths), widths
    shot = tmp_path / "page.png"
    subprocess.run([*base, "--window-size=1200,2400", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                   timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_daily_scores_are_the_scores_of_each_day():
    """Day t's entry equals ``scores`` on that day alone; the phase's spread/skill is not their mean, so the
    two are computed apart."""
    from bridge.worker.report import STEP_ARRAYS, daily_scores, scores
    em, _ = synthetic_emulation(t=3)
    daily = daily_scores(em, CHANNELS[:1], SAMPLES)
    for t in range(3):
        day = {k: v[:, t:t + 1] if k in STEP_ARRAYS else v for k, v in em.items()}
        alone = scores(day, None, CHANNELS[:1], SAMPLES)[CHANNELS[0]]
        assert daily[CHANNELS[0]]["spread_skill"][t] == alone["spread_skill"]
        assert daily[CHANNELS[0]]["highk_diffusion"][t] == alone["highk_diffusion"]
    assert len(set(daily[CHANNELS[0]]["spread_skill"])) == 3  # three different days, three values

"""``out/demo/index.html``: the demo's report as one static page, written from ``summary.json``'s
dict: the targets with PASS/FAIL, what beat what, the scores, the run's facts, then every figure
with one line saying what to look at.

The page opens from the file system with no server: the style is inline, there is no script, and
the images are relative paths to ``figures/*.png`` next to it.  Every number of its tables carries
``data-key``, the path of its value in the summary, so that ``page_problems`` can check the page
against the summary: numbers, images, and nothing fetched from elsewhere.
"""
from __future__ import annotations

import html
import json
import logging
import math
from html.parser import HTMLParser
from pathlib import Path

from bridge.worker.demo_targets import TARGETS, fmt
from bridge.worker.report import SCORE_LABELS
from models.ncio import atomic_write

log = logging.getLogger(__name__)
PAGE = "index.html"
FACTS = ("setup", "online training", "emulation", "timings_s")  # sections shown as key/value tables
STYLE = """
body { font-family: sans-serif; max-width: 72em; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { background: #d9f2d9; font-weight: bold; }
.FAIL { background: #f8d7d7; font-weight: bold; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { margin-top: 0.3em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def write_page(summary: dict, out: Path) -> Path:
    """Write ``out/index.html`` atomically; log what ``page_problems`` finds in it."""
    page = Path(out) / PAGE
    text = render(summary)
    atomic_write(page, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    for problem in page_problems(page, summary):
        log.warning("%s: %s", page, problem)
    log.info("report page written to %s (open it in a browser, no server needed)", page)
    return page


def render(summary: dict) -> str:
    targets = summary["targets"]
    body = ["<h1>oceanbridge demo</h1>",
            f'<p>Targets: <span class="{targets["result"]}">{targets["result"]}</span>, '
            f'{targets["passed"]} of {targets["checked"]} pass. Scores of the held-out emulation phase; '
            f"the numbers are those of <code>summary.json</code>.</p>",
            "<h2>Targets</h2>", _targets_table(targets), _target_legend(),
            "<h2>What beat what</h2>", _verdicts(summary["what beat what"]),
            "<h2>Scores</h2>", _scores_table(summary),
            "<p>RMSE and CRPS: lower is better. High-k ratio and spread/skill: 1 is the truth's. The "
            "diffusion RMSE is that of one sample, which for a calibrated ensemble lies above the MSE "
            "baseline's; CRPS is the proper score of a probabilistic forecast.</p>",
            "<h2>The run</h2>", *(_facts(name, summary[name]) for name in FACTS if name in summary),
            "<h2>Figures</h2>", *(_figure(f) for f in summary.get("figures", []))]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>oceanbridge demo: targets {targets['result']}</title>\n<style>{STYLE}</style>\n</head>\n"
            "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _esc(text) -> str:
    return html.escape(str(text))


def _num(key: str, value) -> str:
    """A table cell holding a summary value, tagged with its path in the summary."""
    align = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f'<td{align} data-key="{_esc(key)}">{_esc(cell_text(value))}</td>'


def cell_text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a" if value is None else (json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    return str(value) if isinstance(value, int) else fmt(value)


def _targets_table(targets: dict) -> str:
    rows = ["<tr><th>variable</th><th>target</th><th>condition</th><th>value</th><th>low</th><th>high</th>"
            "<th>result</th></tr>"]
    for var, checks in targets["by variable"].items():
        for name, c in checks.items():
            key = f"targets/by variable/{var}/{name}"
            bounds = "".join(_num(f"{key}/{b}", c[b]) if c[b] is not None else "<td></td>" for b in ("low", "high"))
            rows.append(f"<tr><td>{_esc(var)}</td><td>{_esc(name)}</td><td><code>{_esc(c['condition'])}</code></td>"
                        f"{_num(key + '/value', c['value'])}{bounds}"
                        f'<td class="{c["result"]}">{c["result"]}</td></tr>')
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _target_legend() -> str:
    items = "".join(f"<li><b>{_esc(t.name)}</b>: {_esc(t.description)}.</li>" for t in TARGETS)
    return f"<ul>{items}</ul>"


def _verdicts(by_var: dict) -> str:
    items = "".join(f"<li><b>{_esc(var)}</b>: {_esc(line)}</li>" for var, lines in by_var.items() for line in lines)
    return f"<ul>{items}</ul>"


def _scores_table(summary: dict) -> str:
    variables = [k.removeprefix("scores ") for k in summary if k.startswith("scores ")]
    rows = ["<tr><th></th>" + "".join(f"<th>{_esc(v)}</th>" for v in variables) + "</tr>"]
    for key, label in SCORE_LABELS.items():
        cells = "".join(_num(f"scores {v}/{key}", summary[f"scores {v}"].get(key)) for v in variables)
        rows.append(f"<tr><th>{_esc(label)}</th>{cells}</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _facts(section: str, rows: dict) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th>{_num(f'{section}/{k}', v)}</tr>" for k, v in rows.items())
    return f"<h3>{_esc(section)}</h3>\n<table>{body}</table>"


def _figure(fig: dict) -> str:
    src = _esc(fig["file"])
    return (f'<figure><img src="{src}" alt="{_esc(fig["caption"])}">'
            f"<figcaption>{_esc(fig['caption'])}</figcaption></figure>")


# ----------------------------------------------------------------------------- check


class _Reader(HTMLParser):
    """Collects what ``page_problems`` checks: images, tagged cells, anything loaded from elsewhere."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.cells: list[tuple[str, str]] = []
        self.foreign: list[str] = []
        self._key: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("script", "link", "iframe", "object", "embed") or any(
                (a.get(k) or "").startswith(("http:", "https:", "//")) for k in ("src", "href")):
            self.foreign.append(f"<{tag}> {a.get('src') or a.get('href') or ''}".strip())
        if tag == "td" and "data-key" in a:
            self._key, self._text = a["data-key"], []

    def handle_data(self, data):
        if self._key is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._key is not None:
            self.cells.append((self._key, "".join(self._text).strip()))
            self._key = None


def page_problems(page: Path, summary: dict) -> list[str]:
    """What is wrong with ``page`` against ``summary``: an image that is missing, not a PNG, not relative
    or not one of the summary's figures; a figure not shown; a number that differs from the summary's
    (to the 4 digits shown); a target or score not shown; anything fetched from elsewhere.  [] when fine."""
    reader = _Reader()
    reader.feed(Path(page).read_text(encoding="utf-8"))
    problems = [f"loads from elsewhere: {f}" for f in reader.foreign]
    problems += _image_problems(Path(page).parent, reader.images, summary)
    problems += [p for key, text in reader.cells if (p := _number_problem(key, text, summary))]
    shown = {key for key, _ in reader.cells}
    problems += [f"{key} is not shown" for key in expected_keys(summary) if key not in shown]
    return problems


def expected_keys(summary: dict) -> list[str]:
    """The summary paths the page must show: every target's value and every score."""
    keys = [f"targets/by variable/{var}/{name}/value"
            for var, checks in summary["targets"]["by variable"].items() for name in checks]
    return keys + [f"{section}/{key}" for section, row in summary.items() if section.startswith("scores ")
                   for key in row]


def _image_problems(folder: Path, images: list[str], summary: dict) -> list[str]:
    figures = [f["file"] for f in summary.get("figures", [])]
    problems = [f"figure {f} is not shown" for f in figures if f not in images]
    for src in images:
        path = folder / src
        if not src or src.startswith("/") or ":" in src:
            problems.append(f"image {src!r} is not a relative path")
        elif src not in figures:
            problems.append(f"image {src} is not one of summary.json's figures")
        elif not path.is_file():
            problems.append(f"image {src} does not exist ({path})")
        elif path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            problems.append(f"image {src} is not a PNG")
    return problems


def _number_problem(key: str, text: str, summary: dict) -> str | None:
    node = summary
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return f"{key} ({text}) is not in the summary"
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None if text == cell_text(node) else f"{key}: page {text!r}, summary {cell_text(node)!r}"
    try:
        shown = float(text)
    except ValueError:
        return f"{key}: page {text!r} is not a number, summary {node!r}"
    same = shown == node if isinstance(node, int) else (
        math.isclose(shown, node, rel_tol=5e-4, abs_tol=1e-300) or math.isnan(shown) and math.isnan(node))
    return None if same else f"{key}: page {text}, summary {node!r}"

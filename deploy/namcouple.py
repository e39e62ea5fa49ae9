"""Write, parse and check the OASIS3-MCT ``namcouple`` of a deploy config.

The namcouple oceanbridge writes has no interpolation: both ends share the
global interior grid, every entry is ``EXPORTED`` with 0 transformations and
the grid line ``R 0 R 0``.  Times are seconds: the coupling period is
``freq * dt``, ``LAG`` is ``lag * dt``, ``$RUNTIME`` is ``(steps + 1) * dt`` (the
states kt = nit000-1 .. nitend are at OASIS times 0 .. steps*dt; OASIS refuses t >= $RUNTIME).
Fields that travel once at start (``<name>_init``) get the period ``$RUNTIME``
so OASIS exchanges them only at time 0.

The parser reads what OASIS reads (``#`` comments and blank lines skipped)
for namcouples without transformations, so ``launch`` can compare a file on
disk with the config and name the stale field before any rank starts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig

STATUSES = ("EXPORTED", "EXPOUT", "AUXILARY", "OUTPUT", "IGNORED", "IGNOUT", "INPUT")


class NamcoupleError(ValueError):
    """A namcouple cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Coupling:
    """One namcouple entry (three lines: names, grids, periodicity)."""
    source: str
    target: str
    period: int               # seconds
    restart: str
    src_nx: int
    src_ny: int
    dst_nx: int
    dst_ny: int
    src_grid: str
    dst_grid: str
    lag: int = 0              # seconds
    seq: int = 1
    status: str = "EXPORTED"
    ntrans: int = 0
    field: str = ""           # config field name; not stored in the file, used in messages


@dataclass(frozen=True)
class Namcouple:
    runtime: int
    nlogprt: tuple[int, int]
    entries: tuple[Coupling, ...]
    nfields: int


# ---------------------------------------------------------------- from the config
def expected_namcouple(cfg: "DeployConfig") -> Namcouple:
    """The namcouple a config implies: every member × every field, in table order."""
    runtime = _seconds(cfg.runtime_seconds)
    entries = tuple(_coupling(cfg, comp, fld, runtime) for comp in cfg.components for fld in cfg.fields)
    return Namcouple(runtime=runtime, nlogprt=(cfg.oasis.nlogprt, cfg.oasis.timers),
                     entries=entries, nfields=len(entries))


def _coupling(cfg: "DeployConfig", comp: str, fld, runtime: int) -> Coupling:
    source, target = cfg.endpoints(comp, fld)
    period = runtime if fld.role == "initial" else _seconds(fld.freq * cfg.run.dt)
    grid, nx, ny = cfg.oasis.grid, cfg.ocean.nx, cfg.ocean.ny
    return Coupling(source=source, target=target, period=period, restart=restart_name(source),
                    src_nx=nx, src_ny=ny, dst_nx=nx, dst_ny=ny, src_grid=grid, dst_grid=grid,
                    lag=_seconds(fld.lag * cfg.run.dt), seq=fld.seq, field=fld.name)


def restart_name(source: str) -> str:
    """OASIS restart file of an entry (read by its sender when LAG > 0)."""
    return f"rst_{source.lower()}.nc"


def _seconds(value: float) -> int:
    if value != int(value):
        raise ValueError(f"OASIS times are whole seconds, got {value}")
    return int(value)


# ---------------------------------------------------------------- writing
def render_namcouple(nc: Namcouple, *, header: str = "") -> str:
    """The namcouple text; ``header`` becomes ``#`` comment lines at the top."""
    lines = [f"# {h}" for h in header.splitlines()]
    lines += ["$NFIELDS", str(nc.nfields), "$END", "$RUNTIME", str(nc.runtime), "$END",
              "$NLOGPRT", f"{nc.nlogprt[0]} {nc.nlogprt[1]}", "$END", "$STRINGS"]
    for e in nc.entries:
        if e.field:
            lines.append(f"# field '{e.field}'")
        lines.append(f"{e.source} {e.target} 1 {e.period} {e.ntrans} {e.restart} {e.status}")
        extras = f" LAG={e.lag}" + (f" SEQ={e.seq}" if e.seq != 1 else "")
        lines.append(f"{e.src_nx} {e.src_ny} {e.dst_nx} {e.dst_ny} {e.src_grid} {e.dst_grid}{extras}")
        lines.append("R 0 R 0")
    lines.append("$END")
    return "\n".join(lines) + "\n"


def write_namcouple(cfg: "DeployConfig", path: Path | None = None) -> Path:
    """Write the config's namcouple (default ``<run_dir>/namcouple``) and return its path."""
    path = Path(path or cfg.namcouple)
    header = (f"written by 'oceanbridge preprod {cfg.source}'\n"
              "edit the deploy config and re-run preprod rather than this file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_namcouple(expected_namcouple(cfg), header=header))
    return path


# ---------------------------------------------------------------- parsing
def parse_namcouple(source: str | Path) -> Namcouple:
    """Parse a namcouple file (a Path) or its text (a str)."""
    if isinstance(source, Path):
        where, text = str(source), source.read_text()
    else:
        where, text = "<namcouple text>", source
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), start=1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    blocks = _blocks(lines, where)
    for key in ("$NFIELDS", "$RUNTIME", "$STRINGS"):
        if key not in blocks:
            raise NamcoupleError(f"{where}: no {key} block")
    nfields = _int(blocks["$NFIELDS"][0], 0, where)
    runtime = _int(blocks["$RUNTIME"][0], 0, where)
    nlog = blocks.get("$NLOGPRT", [(0, "2 0")])[0]  # 2 0 is OASIS's default
    timers = _int(nlog, 1, where) if len(nlog[1].split()) > 1 else 0
    nlogprt = (_int(nlog, 0, where), timers)
    entries = tuple(_entries(blocks["$STRINGS"], where))
    return Namcouple(runtime=runtime, nlogprt=nlogprt, entries=entries, nfields=nfields)


def _blocks(lines: list[tuple[int, str]], where: str) -> dict[str, list[tuple[int, str]]]:
    """``$KEY`` -> the (line number, text) lines up to its ``$END``."""
    blocks: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    for n, text in lines:
        word = text.split()[0]
        if current is None:
            if not word.startswith("$"):
                raise NamcoupleError(f"{where}:{n}: expected a $KEYWORD, got {text!r}")
            current, blocks[word] = word, []
        elif word == "$END":
            current = None
        else:
            blocks[current].append((n, text))
    if current is not None:
        raise NamcoupleError(f"{where}: block {current} has no $END")
    return blocks


def _entries(lines: list[tuple[int, str]], where: str) -> Iterator[Coupling]:
    it = iter(lines)
    for first in it:
        words = first[1].split()
        if len(words) < 7 or words[6] not in STATUSES:
            raise NamcoupleError(f"{where}:{first[0]}: expected 'SRC DST 1 PERIOD NTRANS RESTART STATUS', "
                                 f"got {first[1]!r}")
        ntrans = _int(first, 4, where)
        if ntrans != 0:
            raise NamcoupleError(f"{where}:{first[0]}: entry {words[0]} -> {words[1]} has {ntrans} "
                                 "transformations; oceanbridge couples on one grid without any")
        grid = _next(it, where, words[0])
        if words[6] in ("EXPORTED", "EXPOUT", "AUXILARY"):
            _next(it, where, words[0])  # the 'R 0 R 0' periodicity line
        yield _coupling_from(first, grid, where)


def _coupling_from(first: tuple[int, str], grid: tuple[int, str], where: str) -> Coupling:
    words = first[1].split()
    g = grid[1].split()
    opts = dict(w.split("=", 1) for w in g if "=" in w)
    plain = [w for w in g if "=" not in w]
    if len(plain) != 6:
        raise NamcoupleError(f"{where}:{grid[0]}: expected 'NX NY NX NY GRID GRID [LAG=..] [SEQ=..]', "
                             f"got {grid[1]!r}")
    dims = [_int(grid, i, where) for i in range(4)]
    try:
        lag, seq = int(opts.get("LAG", 0)), int(opts.get("SEQ", 1))
    except ValueError:
        raise NamcoupleError(f"{where}:{grid[0]}: LAG and SEQ must be integers, got {grid[1]!r}") from None
    return Coupling(source=words[0], target=words[1], period=_int(first, 3, where),
                    restart=words[5], src_nx=dims[0], src_ny=dims[1], dst_nx=dims[2], dst_ny=dims[3],
                    src_grid=plain[4], dst_grid=plain[5], lag=lag, seq=seq, status=words[6], ntrans=0)


def _next(it, where: str, name: str) -> tuple[int, str]:
    try:
        return next(it)
    except StopIteration:
        raise NamcoupleError(f"{where}: entry {name} is cut short before $END") from None


def _int(line: tuple[int, str], index: int, where: str) -> int:
    words = line[1].split()
    try:
        return int(words[index])
    except (IndexError, ValueError):
        raise NamcoupleError(f"{where}:{line[0]}: expected an integer as word {index + 1} of "
                             f"{line[1]!r}") from None


# ---------------------------------------------------------------- checking
def compare_namcouple(expected: Namcouple, actual: Namcouple, *, where: str = "namcouple") -> list[str]:
    """Human-readable differences; each names the field and the stale item."""
    problems = []
    if actual.runtime != expected.runtime:
        problems.append(f"{where}: $RUNTIME is {actual.runtime} s, the config gives (steps+1)*dt = "
                        f"{expected.runtime} s")
    if actual.nfields < len(actual.entries):
        problems.append(f"{where}: $NFIELDS is {actual.nfields} but $STRINGS has {len(actual.entries)} entries")
    found = {(e.source, e.target): e for e in actual.entries}
    for want in expected.entries:
        have = found.pop((want.source, want.target), None)
        label = f"field '{want.field}' ({want.source} -> {want.target})"
        if have is None:
            problems.append(f"{where}: {label} is missing")
        else:
            problems += [f"{where}: {label}: {d}" for d in _entry_diffs(want, have)]
    for extra in found.values():
        problems.append(f"{where}: entry {extra.source} -> {extra.target} is not in the config's field table")
    return problems


def _entry_diffs(want: Coupling, have: Coupling) -> list[str]:
    diffs = []
    for key, what in (("period", "coupling period (s)"), ("lag", "LAG (s)"), ("seq", "SEQ"),
                      ("status", "status")):
        if getattr(have, key) != getattr(want, key):
            diffs.append(f"{what} is {getattr(have, key)} in the namcouple, the config gives {getattr(want, key)}")
    have_grid = (have.src_nx, have.src_ny, have.dst_nx, have.dst_ny)
    want_grid = (want.src_nx, want.src_ny, want.dst_nx, want.dst_ny)
    if have_grid != want_grid:
        diffs.append(f"grid size is {have_grid} in the namcouple, the config gives {want_grid}")
    return diffs


def check_namcouple(cfg: "DeployConfig", path: Path | None = None) -> list[str]:
    """Problems of the namcouple on disk against the config (empty when it is current)."""
    path = Path(path or cfg.namcouple)
    if not path.is_file():
        return [f"{path}: no namcouple; run 'oceanbridge preprod {cfg.source}'"]
    try:
        actual = parse_namcouple(path)
    except NamcoupleError as err:
        return [str(err)]
    return compare_namcouple(expected_namcouple(cfg), actual, where=str(path))


def without_field_labels(nc: Namcouple) -> Namcouple:
    """The same namcouple with the (file-less) field labels dropped, for equality tests."""
    return replace(nc, entries=tuple(replace(e, field="") for e in nc.entries))

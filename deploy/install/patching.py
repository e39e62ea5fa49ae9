"""Small commented insertions into copies of host-model source files.

A patch table (TOML, shipped in ``nemo_patches/`` and ``croco_patches/``) is a
list of ``[[patch]]`` entries::

    [[patch]]
    id = "nemogcm-comm"              # unique, no spaces: names the marker block
    target = "nemogcm.F90"           # basename of the file in the patched folder
    anchor = "CALL mpp_start( ilocal_comm )"   # an exact line (leading/trailing blanks ignored)
    # regex = '^\\s*CALL\\s+mpp_start\\b'      # ... or a regex (re.search); exactly one of the two
    position = "before"              # before | after the anchor line
    comment = "!"                    # "!" (F90, or column 1 of fixed form), "C" (fixed form), "/*" (C/cpp)
    description = "communicator from the bridge"   # optional, written in the opening marker
    text = '''
    #if defined key_obridge
          CALL obn_init( ilocal_comm )
    #endif
    '''

The anchor must match exactly one line of the file, outside blocks already
inserted by oceanbridge; zero or several matches refuse with a message naming
the file, the anchor and the match count. Inserted text is wrapped in markers::

    ! >>> oceanbridge nemogcm-comm: communicator from the bridge
    ...
    ! <<< oceanbridge nemogcm-comm

so that applying again is a no-op (reported ``skipped``), a changed text
replaces the old block (``upgraded``) and :func:`remove_blocks` takes patches
out. Files are checked all together before any is written, and each is written
atomically (temporary file + rename): a refused table leaves the tree as it was.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# comment syntax -> (opening, closing) of a one-line comment
COMMENTS: dict[str, tuple[str, str]] = {"!": ("!", ""), "C": ("C", ""), "/*": ("/*", " */"), "#": ("#", "")}
POSITIONS = ("before", "after")
_KEYS = {"id", "target", "anchor", "regex", "position", "comment", "description", "text"}
_MARK = re.compile(r"^\s*(?:!|C|c|/\*|#)\s*(>>>|<<<) oceanbridge (\S+?):?(?:\s.*)?$")


class PatchError(ValueError):
    """A patch table or a target file that cannot be patched; the message says where and why."""


@dataclass(frozen=True)
class Patch:
    """One insertion: ``text`` goes ``position`` the single line matching ``anchor`` (or ``regex``)."""

    id: str
    target: str
    position: str
    text: str
    comment: str = "!"
    anchor: str | None = None
    regex: str | None = None
    description: str = ""

    def __post_init__(self):
        where = f"patch '{self.id}'"
        if not self.id or re.search(r"[\s:]", self.id):
            raise PatchError(f"{where}: id must be non-empty, without blanks or ':'")
        if not self.target or os.path.basename(self.target) != self.target:
            raise PatchError(f"{where}: target must be a file basename, got '{self.target}'")
        if self.position not in POSITIONS:
            raise PatchError(f"{where}: position '{self.position}' is not one of {POSITIONS}")
        if self.comment not in COMMENTS:
            raise PatchError(f"{where}: comment '{self.comment}' is not one of {tuple(COMMENTS)}")
        if (self.anchor is None) == (self.regex is None):
            raise PatchError(f"{where}: give exactly one of 'anchor' (exact line) or 'regex'")
        if self.anchor is not None and not self.anchor.strip():
            raise PatchError(f"{where}: empty anchor")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise PatchError(f"{where}: bad regex {self.regex!r}: {exc}") from None

    @property
    def anchor_text(self) -> str:
        """The anchor as written in the table, for messages."""
        return self.anchor if self.anchor is not None else f"regex {self.regex!r}"

    def matches(self, line: str) -> bool:
        """Whether ``line`` is this patch's anchor."""
        if self.anchor is not None:
            return line.strip() == self.anchor.strip()
        return re.search(self.regex, line) is not None

    def block(self) -> list[str]:
        """The inserted lines, markers included (no trailing newlines)."""
        opening, closing = COMMENTS[self.comment]
        title = f"{self.id}: {self.description}" if self.description else self.id
        body = self.text.strip("\n").split("\n") if self.text.strip() else []
        return ([f"{opening} >>> oceanbridge {title}{closing}"] + body
                + [f"{opening} <<< oceanbridge {self.id}{closing}"])


@dataclass(frozen=True)
class PatchResult:
    """What happened to one patch: 'applied', 'skipped' (already there, same text) or 'upgraded'."""

    id: str
    target: str
    status: str


def load_table(path: str | Path) -> list[Patch]:
    """Read a TOML patch table; unknown keys and duplicate ids raise :class:`PatchError`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PatchError(f"patch table {path}: {exc}") from None
    unknown_top = set(data) - {"patch"}
    if unknown_top:
        raise PatchError(f"patch table {path}: unknown top-level keys {sorted(unknown_top)} (only [[patch]])")
    patches = []
    for k, entry in enumerate(data.get("patch", [])):
        unknown = set(entry) - _KEYS
        if unknown:
            raise PatchError(f"patch table {path}, entry {k} ({entry.get('id', '?')}): unknown keys "
                             f"{sorted(unknown)}; known: {sorted(_KEYS)}")
        try:
            patches.append(Patch(**entry))
        except TypeError as exc:
            raise PatchError(f"patch table {path}, entry {k}: {exc}") from None
    ids = [p.id for p in patches]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise PatchError(f"patch table {path}: duplicate ids {dups}")
    return patches


def find_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Marker blocks in ``lines``: id -> (first, last) line index, markers included."""
    blocks, open_id, start = {}, None, 0
    for k, line in enumerate(lines):
        m = _MARK.match(line)
        if not m:
            continue
        kind, pid = m.groups()
        if kind == ">>>" and open_id is None:
            open_id, start = pid, k
        elif kind == "<<<" and pid == open_id:
            blocks[open_id] = (start, k)
            open_id = None
        else:
            raise PatchError(f"line {k + 1}: unbalanced oceanbridge marker '{line.strip()}'")
    if open_id is not None:
        raise PatchError(f"line {start + 1}: oceanbridge block '{open_id}' is never closed")
    return blocks


def remove_blocks(text: str, ids: set[str] | None = None) -> str:
    """``text`` without the oceanbridge blocks named in ``ids`` (all of them when None)."""
    lines = text.split("\n")
    for pid, (first, last) in sorted(find_blocks(lines).items(), key=lambda kv: -kv[1][0]):
        if ids is None or pid in ids:
            del lines[first:last + 1]
    return "\n".join(lines)


def _anchor_index(lines: list[str], patch: Patch, filename: str) -> int:
    inside = {k for first, last in find_blocks(lines).values() for k in range(first, last + 1)}
    hits = [k for k, line in enumerate(lines) if k not in inside and patch.matches(line)]
    if len(hits) != 1:
        where = "" if not hits else " (lines " + ", ".join(str(k + 1) for k in hits[:10]) + ")"
        raise PatchError(f"{filename}: patch '{patch.id}': anchor {patch.anchor_text!r} must match exactly one "
                         f"line, found {len(hits)}{where}; is this the supported version of the file?")
    return hits[0]


def apply_to_text(text: str, patches: list[Patch], filename: str = "<text>") -> tuple[str, list[PatchResult]]:
    """Apply ``patches`` (all for this file) to ``text``; returns the new text and one result per patch."""
    lines = text.split("\n")
    try:
        find_blocks(lines)
    except PatchError as exc:
        raise PatchError(f"{filename}: {exc}") from None
    results = []
    for patch in patches:
        new_block = patch.block()
        existing = find_blocks(lines).get(patch.id)
        status = "applied"
        if existing is not None:
            first, last = existing
            if lines[first:last + 1] == new_block:
                results.append(PatchResult(patch.id, filename, "skipped"))
                continue
            del lines[first:last + 1]
            status = "upgraded"
        k = _anchor_index(lines, patch, filename)
        at = k if patch.position == "before" else k + 1
        lines[at:at] = new_block
        results.append(PatchResult(patch.id, filename, status))
    return "\n".join(lines), results


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def apply_patches(folder: str | Path, patches: list[Patch], *, dry_run: bool = False,
                  show=print, label: str | Path | None = None) -> list[PatchResult]:
    """Apply ``patches`` to the files of ``folder`` (by target basename).

    Every file is patched in memory first; the first refusal raises
    :class:`PatchError` before anything is written. ``dry_run`` writes nothing and
    passes a unified diff of each changed file to ``show``. ``label`` names the
    folder in messages (the real destination when ``folder`` is a staging copy)."""
    folder = Path(folder)
    shown = Path(label) if label is not None else folder
    by_target: dict[str, list[Patch]] = {}
    for p in patches:
        by_target.setdefault(p.target, []).append(p)
    planned, results = [], []
    for target, group in by_target.items():
        path = folder / target
        if not path.is_file():
            raise PatchError(f"{path}: file to patch not found (patches {[p.id for p in group]})")
        old = path.read_text()
        new, res = apply_to_text(old, group, str(shown / target))
        results += res
        if new != old:
            planned.append((path, old, new))
    for path, old, new in planned:
        if dry_run:
            show("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                              f"a/{path.name}", f"b/{path.name}")))
        else:
            write_atomic(path, new)
    for r in results:
        log.info("%s: patch %s %s%s", r.target, r.id, r.status, " (dry run)" if dry_run else "")
    return results

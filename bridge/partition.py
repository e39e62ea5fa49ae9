"""Box partitions of the global interior grid, and the tiling checks on them.

A box is the part of the global ``(nx, ny)`` interior grid that one rank owns:
0-based offsets ``(i0, j0)`` of its first interior point and extents
``(ni, nj)``, as in ``oasis_def_partition``'s box partitions. Halos never
appear here.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import DefinitionError

# What a rank receives at the points of its box that no rank of the sending side owns (a side that declared gaps:
# land-only subdomains removed): 0, the land value of NEMO's fields and of a land-sea mask.
GAP_FILL = 0.0


@dataclass(frozen=True)
class BoxPartition:
    """The box ``[i0, i0+ni) x [j0, j0+nj)`` of a global ``nx x ny`` grid."""

    nx: int
    ny: int
    i0: int
    j0: int
    ni: int
    nj: int

    def __post_init__(self):
        for name in ("nx", "ny", "i0", "j0", "ni", "nj"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise DefinitionError(f"BoxPartition.{name} must be an int, got {value!r}")
        if self.nx <= 0 or self.ny <= 0:
            raise DefinitionError(f"BoxPartition: global size {self.nx}x{self.ny} must be positive")
        if self.ni <= 0 or self.nj <= 0:
            raise DefinitionError(f"BoxPartition: extent {self.ni}x{self.nj} must be positive")
        if self.i0 < 0 or self.j0 < 0 or self.i0 + self.ni > self.nx or self.j0 + self.nj > self.ny:
            raise DefinitionError(
                f"BoxPartition: box i={self.i0}..{self.i0 + self.ni - 1}, j={self.j0}..{self.j0 + self.nj - 1} "
                f"lies outside the global grid {self.nx}x{self.ny}")

    @classmethod
    def whole(cls, nx: int, ny: int) -> BoxPartition:
        """The whole domain on one rank."""
        return cls(nx, ny, 0, 0, nx, ny)

    @property
    def size(self) -> int:
        return self.ni * self.nj

    def intersect(self, other: BoxPartition) -> BoxPartition | None:
        """The overlap of two boxes of the same global grid, or None."""
        i0, j0 = max(self.i0, other.i0), max(self.j0, other.j0)
        i1 = min(self.i0 + self.ni, other.i0 + other.ni)
        j1 = min(self.j0 + self.nj, other.j0 + other.nj)
        if i1 <= i0 or j1 <= j0:
            return None
        return BoxPartition(self.nx, self.ny, i0, j0, i1 - i0, j1 - j0)

    def local_slices(self, sub: BoxPartition) -> tuple[slice, slice]:
        """Slices ``(j, i)`` that select ``sub`` inside this box's local array."""
        return (slice(sub.j0 - self.j0, sub.j0 - self.j0 + sub.nj),
                slice(sub.i0 - self.i0, sub.i0 - self.i0 + sub.ni))

    def describe(self) -> str:
        return f"i={self.i0}..{self.i0 + self.ni - 1}, j={self.j0}..{self.j0 + self.nj - 1}"


def split_1d(n: int, parts: int) -> list[tuple[int, int]]:
    """Split ``n`` points into ``parts`` contiguous (offset, extent) pieces, the
    first ``n % parts`` pieces one point longer (uneven splits are normal)."""
    if parts <= 0 or parts > n:
        raise DefinitionError(f"cannot split {n} points into {parts} parts")
    base, extra = divmod(n, parts)
    pieces, offset = [], 0
    for p in range(parts):
        extent = base + (1 if p < extra else 0)
        pieces.append((offset, extent))
        offset += extent
    return pieces


def decompose(nx: int, ny: int, px: int, py: int) -> list[BoxPartition]:
    """A px x py block decomposition, rank order i fastest (as NEMO's narea)."""
    return [BoxPartition(nx, ny, i0, j0, ni, nj)
            for (j0, nj) in split_1d(ny, py) for (i0, ni) in split_1d(nx, px)]


def best_layout(nx: int, ny: int, nranks: int) -> tuple[int, int]:
    """The px x py = nranks layout whose tiles are closest to square."""
    best = None
    for px in range(1, nranks + 1):
        if nranks % px:
            continue
        py = nranks // px
        if px > nx or py > ny:
            continue
        score = abs(nx / px - ny / py)
        if best is None or score < best[0]:
            best = (score, px, py)
    if best is None:
        raise DefinitionError(f"no layout of {nranks} ranks fits a {nx}x{ny} grid")
    return best[1], best[2]


def check_tiling(boxes: dict[int, BoxPartition], component: str, gaps: bool = False) -> None:
    """Raise unless the boxes (rank -> box) cover their global grid exactly once; with ``gaps`` (the component
    declared that its ranks cover only part of the grid: land-only subdomains removed) at most once."""
    ranks = sorted(boxes)
    shapes = {(boxes[r].nx, boxes[r].ny) for r in ranks}
    if len(shapes) != 1:
        detail = ", ".join(f"rank {r}: {boxes[r].nx}x{boxes[r].ny}" for r in ranks)
        raise DefinitionError(f"component '{component}': ranks disagree on the global grid ({detail})")
    nx, ny = shapes.pop()
    for a_idx, a in enumerate(ranks):
        for b in ranks[a_idx + 1:]:
            overlap = boxes[a].intersect(boxes[b])
            if overlap is not None:
                raise DefinitionError(
                    f"component '{component}': partitions of ranks {a} and {b} overlap at {overlap.describe()}")
    covered = sum(boxes[r].size for r in ranks)
    if covered != nx * ny and not gaps:
        raise DefinitionError(
            f"component '{component}': partitions leave a gap: they cover {covered} of {nx}x{ny}={nx * ny} "
            f"points (first missing point: {_first_gap(boxes.values(), nx, ny)}); if no rank owns those points "
            f"because they are land (land-only subdomains removed), declare it: def_partition(box, gaps=True) "
            f"(Fortran: obr_def_partition(..., ld_gaps=.true.))")


def unowned(box: BoxPartition, owned: list[BoxPartition]):
    """The points of ``box`` that none of the (disjoint) ``owned`` boxes cover, as a boolean (nj, ni) array, or
    None when they cover it all (the usual case, which costs nothing at run time)."""
    inside = [b for b in (box.intersect(o) for o in owned) if b is not None]
    if sum(b.size for b in inside) == box.size:
        return None
    import numpy as np
    missing = np.ones((box.nj, box.ni), dtype=bool)
    for b in inside:
        missing[box.local_slices(b)] = False
    return missing


def _first_gap(boxes, nx: int, ny: int) -> str:
    # Only called on error, so a dense coverage scan is affordable.
    import numpy as np
    covered = np.zeros((ny, nx), dtype=bool)
    for b in boxes:
        covered[b.j0:b.j0 + b.nj, b.i0:b.i0 + b.ni] = True
    j, i = np.argwhere(~covered)[0]
    return f"i={i}, j={j}"

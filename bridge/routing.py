"""Point-to-point routes between two decompositions of the same global grid.

Each side declares its boxes; a route is the overlap of one local box with one
peer box. The union of a rank's routes is exactly its box when the peer side
tiles the grid, so every point travels once, directly, with no root gather
(MCT's router, restricted to box partitions).
"""
from __future__ import annotations

from dataclasses import dataclass

from .partition import BoxPartition


@dataclass(frozen=True)
class Route:
    """Points ``box`` (global indices) exchanged with world rank ``peer``."""

    peer: int
    box: BoxPartition


def routes(mine: BoxPartition, peers: dict[int, BoxPartition]) -> list[Route]:
    """Routes from ``mine`` to each peer rank whose box overlaps it, in rank order."""
    found = []
    for rank in sorted(peers):
        overlap = mine.intersect(peers[rank])
        if overlap is not None:
            found.append(Route(rank, overlap))
    return found

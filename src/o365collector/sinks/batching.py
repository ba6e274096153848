"""Cutting a batch into requests or writes that respect a byte limit."""

from __future__ import annotations

from collections.abc import Sequence


def split_by_bytes(
    sizes: Sequence[int], max_bytes: int | None, *, overhead: int = 0, separator: int = 0
) -> list[list[int]]:
    """Group item indexes, in order, so each group's encoded size stays within ``max_bytes``.

    A group's size is ``overhead`` plus its items' sizes plus ``separator`` between items.
    An item too big to share a group goes alone (callers reject true oversize first).

    Returns:
        The groups of indexes into ``sizes``; no group is empty.
    """
    if max_bytes is None:
        return [list(range(len(sizes)))] if sizes else []
    groups: list[list[int]] = []
    current: list[int] = []
    size = overhead
    for index, item in enumerate(sizes):
        extra = item + (separator if current else 0)
        if current and size + extra > max_bytes:
            groups.append(current)
            current, size = [], overhead
            extra = item
        current.append(index)
        size += extra
    if current:
        groups.append(current)
    return groups

"""Proposed src changes as patches: build a copy of src with the first N applied.

``bench/patches/NN-name.patch`` are unified diffs against ``src/`` (paths ``a/src/…``).
The benchmarks measure the code in ``src/`` and, beside it, copies with the patches
applied one after the other, so each change has a before and an after from the same run.
A patch that no longer applies (merged, or src moved on) is skipped and reported.

When ``bench/patches/`` is missing or holds no patch, nothing is copied: the benchmarks
measure src alone (``Tree.src`` is then the tree under test itself, ``None`` for the
installed o365collector) and add no "with bench/patches applied" rows.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT

PATCHES = ROOT / "bench" / "patches"


@dataclass
class Tree:
    """A copy of src with some patches applied (``src`` None: the installed o365collector)."""

    src: Path | None
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def patch_names() -> list[str]:
    """The patch files, in order, without ``.patch`` (none when the folder is missing)."""
    if not PATCHES.is_dir():
        return []
    return sorted(p.stem for p in PATCHES.glob("*.patch"))


def _apply(root: Path, patch: Path) -> bool:
    check = subprocess.run(
        ["git", "apply", "--check", "-p1", str(patch)],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if check.returncode != 0:
        return False
    subprocess.run(["git", "apply", "-p1", str(patch)], cwd=root, check=True, capture_output=True)
    return True


def build(base: Path | None, names: list[str], dest: Path) -> Tree:
    """Copy ``base`` (default: the repository's src) to ``dest`` and apply ``names``."""
    source = base or ROOT / "src"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    tree = Tree(dest / "src")
    for name in names:
        if _apply(dest, PATCHES / f"{name}.patch"):
            tree.applied.append(name)
        else:
            tree.skipped.append(name)
    return tree


def patched(base: Path | None, dest: Path) -> Tree:
    """``base`` with every patch applied; without patches, ``base`` itself (nothing applied).

    Callers measure ``tree.src`` beside ``base`` only when ``tree.applied`` is not empty.
    """
    names = patch_names()
    if not names:
        return Tree(base)
    return build(base, names, dest)


def steps(base: Path | None, dest: Path) -> list[tuple[str, Tree]]:
    """``[("src", unpatched), ("+01-…", 01 applied), ("+02-…", 01+02 applied), …]``.

    A step whose patch does not apply is left out (named in ``skipped`` of every later
    tree, see ``left_out``). Without patches: ``[("src", base itself)]``, nothing copied.
    """
    names = patch_names()
    if not names:
        return [("src", Tree(base))]
    out = [("src", build(base, [], dest / "step-0"))]
    for index in range(len(names)):
        tree = build(base, names[: index + 1], dest / f"step-{index + 1}")
        if names[index] in tree.applied:
            out.append((f"+{names[index]}", tree))
    return out


def left_out(*trees: Tree) -> list[str]:
    """A note naming the patches that do not apply (empty when all apply or there are none)."""
    applied = {name for tree in trees for name in tree.applied}
    skipped = [name for name in patch_names() if name not in applied]
    if not skipped:
        return []
    return [f"Patches of bench/patches/ that do not apply to src (left out): {', '.join(skipped)}."]

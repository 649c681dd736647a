"""The library's own source files: which files a piece of code depends on.

A rule that declares ``lib("figures")`` as input reruns when ``tdann/figures.py`` or any library module it imports,
directly or through others, changes. A module is ``<name>.py`` or a package ``<name>/`` (all its files).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent


def module_files(name: str, library: str | Path = LIBRARY) -> list[Path]:
    """The files of library module ``name``: ``<name>.py``, or every ``.py`` file of the package ``<name>/``;
    [] if there is neither."""
    base = Path(library) / name
    if base.is_dir():
        return sorted(base.glob("*.py"))
    file = base.with_name(f"{name}.py")
    return [file] if file.is_file() else []


def script_imports(path: str | Path) -> set[str]:
    """tdann modules a script outside the library imports (``from tdann import x``, ``from tdann.x import ...``,
    ``import tdann.x``)."""
    return _imports(Path(path), top=None)


@functools.cache
def imports(name: str, library: str | Path = LIBRARY) -> frozenset[str]:
    """Library modules that module ``name`` imports (``from . import x``, ``from .x import``, ``from tdann(.x)
    import``; in a package's files ``from .. import x`` and ``from ..x import``)."""
    top = 2 if (Path(library) / name).is_dir() else 1  # the relative level that names the tdann package
    found: set[str] = set()
    for path in module_files(name, library):
        found |= _imports(path, top)
    return frozenset(m for m in found if m != name and module_files(m, library))


def closure(names: list[str] | tuple[str, ...], library: str | Path = LIBRARY) -> list[Path]:
    """Every file of ``names`` and, transitively, of every library module they import."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += sorted(imports(m, library) - seen)
    return [f for m in sorted(seen) for f in module_files(m, library)]


def _imports(path: Path, top: int | None) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tdann.")}
        if not isinstance(node, ast.ImportFrom):
            continue
        mod = node.module or ""
        if (top is not None and node.level == top and not mod) or (node.level == 0 and mod == "tdann"):
            found |= {a.name for a in node.names}
        elif (top is not None and node.level == top) or (node.level == 0 and mod.startswith("tdann.")):
            found.add(mod.removeprefix("tdann.").split(".")[0])
    return found

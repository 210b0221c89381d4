"""Imports only go down the floors of DESIGN.md (STYLE.md §3)."""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "richness"
FLOORS = {
    "scaling": 1,
    "nn": 2,
    "measure": 2,
    "infinite": 2,
    "config": 3,
    "callbacks": 3,
    "build": 3,
    "train": 3,
    "data": 3,
    "sweep": 3,
    "analysis": 3,
    "coordcheck": 3,
    "estimate": 3,
    "_widths": 3,
    "claims": 4,
    "cli": 4,
    "__main__": 4,
}


def _floor(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "richness" or len(parts) < 2:
        return None
    return FLOORS.get(parts[1])


def test_no_upward_imports():
    violations = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        own = _floor(".".join(rel.parts))
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                target = _floor(name)
                if target is not None and target > own:
                    violations.append(f"{rel}: imports {name} (floor {target} > {own})")
    assert not violations, "\n".join(violations)


def test_every_module_has_a_floor():
    top = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if not p.name.startswith("_")}
    top -= {"py"}
    assert top <= set(FLOORS) | {"py.typed"}, top - set(FLOORS)

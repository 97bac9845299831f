"""The doors of docs/ARCHITECTURE.md hold: which room of the layer may import which.

- ``flows`` never import ``runtime`` nor a concrete system (only ``systems.ports``/``plugin``);
- a system package never imports ``runtime`` nor another system (``systems.http``, ``systems.oauth``
  and ``systems.signing`` are shared);
- ``runtime`` reaches systems only through ``systems.registry``, ``systems.plugin`` and ``systems.ports``;
- ``model``, ``errors``, ``settings`` and ``state`` import none of ``flows``, ``runtime``, ``systems``;
- nothing in the layer imports ``sandbox``, ``cli`` or ``tests``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared" / "python" / "erpsync"
NEUTRAL_SYSTEMS = {
    "erpsync.systems",
    "erpsync.systems.ports",
    "erpsync.systems.plugin",
    "erpsync.systems.http",
    "erpsync.systems.oauth",
    "erpsync.systems.signing",
}


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names if node.module in ("erpsync", "erpsync.systems")]
    return found


def room(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2:
        return ""
    if parts[1] == "systems" and len(parts) > 2 and f"erpsync.systems.{parts[2]}" not in NEUTRAL_SYSTEMS:
        return f"systems.{parts[2]}"
    return parts[1]


def crosses(me: str, other: str) -> bool:
    """Whether room ``me`` may not import room ``other``."""
    concrete = other.startswith("systems")
    rules = {
        "flows": other == "runtime" or concrete,
        "runtime": concrete,
        "model": other in ("flows", "runtime") or concrete,
        "errors": other in ("flows", "runtime") or concrete,
        "settings": other in ("flows", "runtime") or concrete,
        "state": other in ("flows", "runtime") or concrete,
    }
    if me.startswith("systems."):
        return other == "runtime" or (concrete and other != me)
    return rules.get(me, False)


def broken_doors(path: Path) -> list[str]:
    me = room("erpsync." + ".".join(path.relative_to(LAYER).with_suffix("").parts))
    bad: list[str] = []
    for target in imports(path):
        if target.split(".")[0] in ("sandbox", "cli", "tests"):
            bad.append(target)
            continue
        if not target.startswith("erpsync"):
            continue
        other = room(target)
        if target in NEUTRAL_SYSTEMS or (target == "erpsync.systems.registry" and me == "runtime"):
            continue
        if crosses(me, other):
            bad.append(target)
    return bad


FILES = sorted(LAYER.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(LAYER)) for p in FILES])
def test_no_door_is_broken(path: Path) -> None:
    assert broken_doors(path) == [], f"{path.relative_to(LAYER)} imports across a door"


def test_the_check_catches_a_broken_door(tmp_path: Path) -> None:
    """A flow that imports the runtime or a concrete system, and a system that imports another, are caught."""
    fake = tmp_path / "erpsync"
    (fake / "flows").mkdir(parents=True)
    (fake / "systems" / "magento").mkdir(parents=True)
    (fake / "flows" / "x.py").write_text(
        "from erpsync.runtime import queues\nfrom erpsync.systems.acumatica import mapping\n"
    )
    (fake / "systems" / "magento" / "y.py").write_text("from erpsync.systems.acumatica.client import AcumaticaClient\n")
    globals()["LAYER"], old = fake, LAYER
    try:
        assert broken_doors(fake / "flows" / "x.py") == ["erpsync.runtime", "erpsync.systems.acumatica"]
        assert broken_doors(fake / "systems" / "magento" / "y.py") == ["erpsync.systems.acumatica.client"]
    finally:
        globals()["LAYER"] = old

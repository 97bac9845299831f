"""`pip install .` gives the `erpsync` command: pyproject names every package of the command and the
layer (a subpackage left out would install a command that fails on import) and pins what it needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_installed_and_the_command_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = set(project["tool"]["setuptools"]["packages"])
    found = set()
    for base, prefix in ((ROOT / "layers" / "shared" / "python", ""), (ROOT, "")):
        for init in base.glob("**/__init__.py"):
            rel = init.parent.relative_to(base)
            name = prefix + ".".join(rel.parts)
            if rel.parts and rel.parts[0] in ("erpsync", "cli", "sandbox"):
                found.add(name)
    assert declared == found
    assert project["project"]["scripts"]["erpsync"] == "cli.main:main"
    assert all("==" in dep for dep in project["project"]["dependencies"])


def test_the_layer_s_pins_and_the_project_s_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {d.split("==")[0]: d for d in project["project"]["dependencies"]}
    layer = ROOT / "layers" / "shared" / "python" / "requirements.txt"
    for line in layer.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert pins[line.split("==")[0]] == line.strip()

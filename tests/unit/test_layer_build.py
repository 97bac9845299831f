"""The shared layer's build (what `sam build` runs for SharedLayer): erpsync with its bytecode
compiled ahead, in a form Lambda's read-only layer uses as it is (hash-based, not checked against
the source's timestamp, which a zip does not keep to the second)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers/shared/python"
MAKE = ("make", "-s", "-f", str(LAYER / "Makefile"), "build-SharedLayer")


def _build(into: Path) -> Path:
    subprocess.run(
        [*MAKE, f"ARTIFACTS_DIR={into}", "DEPS=no", f"PYTHON={sys.executable}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return into / "python"


def test_sam_builds_the_layer_with_its_makefile() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    layer = template["Resources"]["SharedLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "layers/shared/python"
    assert (LAYER / "Makefile").is_file()


def test_every_module_ships_bytecode_python_uses_without_the_source_s_timestamp(tmp_path: Path) -> None:
    built = _build(tmp_path)
    sources = sorted((built / "erpsync").rglob("*.py"))
    assert len(sources) == len(list((LAYER / "erpsync").rglob("*.py"))) > 40
    tag = sys.implementation.cache_tag
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert pyc.is_file(), f"no bytecode for {source.relative_to(built)}"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc.name}: flags {flags:#b}, not unchecked-hash"
    # sources changed after the build (unzipping resets their times): the bytecode is used as it is, and
    # nothing is written; a source Python read now would not even compile
    (built / "erpsync/runtime/worker.py").write_text("this is not python\n")
    for source in sources:
        os.utime(source, (1, 1))
    before = {p: p.stat().st_mtime_ns for p in (built / "erpsync").rglob("*.pyc")}
    out = subprocess.run(
        [sys.executable, "-c", "import erpsync.runtime.worker as w; print(w.Worker.__name__)"],
        env={**os.environ, "PYTHONPATH": str(built), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout.strip() == "Worker", out.stderr
    assert {p: p.stat().st_mtime_ns for p in (built / "erpsync").rglob("*.pyc")} == before


def test_a_layer_built_with_another_python_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\nexec " + sys.executable + ' -c "import sys; sys.exit(\'3.12.0\')" "$@"\n')
    fake.chmod(0o755)
    out = subprocess.run(
        [*MAKE, f"ARTIFACTS_DIR={tmp_path / 'out'}", "DEPS=no", f"PYTHON={fake}"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert not (tmp_path / "out" / "python" / "erpsync").exists()

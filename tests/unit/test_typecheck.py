"""Static tools follow ``cityos.<folder>`` from a fresh checkout (src/cityos links), and mypy finds ingest,
platform and opendata clean."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _components() -> list[str]:
    """setup.py's COMPONENTS: the top-level folders installed as ``cityos.<folder>``."""
    for node in ast.walk(ast.parse((REPO / "setup.py").read_text())):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPONENTS":
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPONENTS")


def test_every_component_folder_has_a_link_static_tools_follow():
    links = REPO / "src" / "cityos"
    assert sorted(p.name for p in links.iterdir()) == sorted(_components())
    for folder in _components():
        link = links / folder
        assert link.is_symlink() and os.readlink(link) == f"../../{folder}", link
        assert link.resolve() == (REPO / folder).resolve()


@pytest.mark.slow
def test_mypy_finds_no_type_errors_in_ingest_platform_and_opendata():
    result = subprocess.run([sys.executable, "-m", "mypy", "-p", "cityos.ingest", "-p", "cityos.platform",
                             "-p", "cityos.opendata"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout

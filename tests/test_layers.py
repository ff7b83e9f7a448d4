"""The package's layers hold (import-linter contracts in pyproject.toml), and a wrong import breaks them.

Both run ``lint-imports`` as CI does: once on the real tree, and on a copy of the package with one
deliberately wrong import added, to show that the contracts catch it and name the one they break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {contract["type"]: contract["name"] for contract in CONFIG["contracts"]}
LAYERS = CONTRACTS["layers"]
FACADE_ONLY = CONTRACTS["forbidden"]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``explorer`` package and the ``pyproject.toml`` found in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "300", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout and f"{FACADE_ONLY} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken", "kept", "named"),
    [
        (
            "ui/tabs/redundancy.py",
            "import explorer.analysis.nearest",
            FACADE_ONLY,
            LAYERS,
            "explorer.ui.tabs.redundancy -> explorer.analysis.nearest",
        ),
        (
            "models/card.py",
            "import explorer.analysis.nearest",
            LAYERS,
            FACADE_ONLY,
            "explorer.models.card -> explorer.analysis.nearest",
        ),
    ],
    ids=["ui-imports-analysis", "models-import-analysis"],
)
def test_a_wrong_import_breaks_the_contract_it_crosses(
    tmp_path: Path, module: str, wrong_import: str, broken: str, kept: str, named: str
) -> None:
    shutil.copytree(
        ROOT / "explorer",
        tmp_path / "explorer",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "explorer" / module, "a") as handle:
        handle.write(f"\n{wrong_import}  # deliberately wrong\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(broken) and line.endswith("BROKEN") for line in lines), result.stdout
    assert any(line.startswith(kept) and line.endswith("KEPT") for line in lines), result.stdout
    assert named in result.stdout

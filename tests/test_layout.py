"""The package's structure: imports point down the layers, and no module grows past 600 lines.

Layers, bottom to top: common <- au <- models <- datasets <- training <- evaluation / inference (<-
the top-level scripts). A module imports only from its own layer and those below it (lazy imports
inside functions count too; evaluation and inference share a layer); inference loads checkpoints
through models/, never through training/.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "my_affectgpt"
RANK = {"common": 0, "au": 1, "models": 2, "datasets": 3, "training": 4, "evaluation": 5, "inference": 5}
FORBIDDEN = {"inference": {"training"}}  # besides every higher layer
MAX_LINES = 600


def _modules() -> list:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imported_layers(path: Path) -> set:
    """(line, layer) of every my_affectgpt import of a module, relative ones resolved."""
    package = list(path.relative_to(REPO).with_suffix("").parts)[:-1]  # a/b/c.py, a/b/__init__.py: a.b
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # from . import x: x may be a sub-package
                    names = [f"{names[0]}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
                if node.module == "my_affectgpt":
                    names = [f"my_affectgpt.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "my_affectgpt" and len(parts) > 1 and parts[1] in RANK:
                found.add((node.lineno, parts[1]))
    return found


def _violations(path: Path) -> list:
    layer = _layer(path)
    if layer not in RANK:
        return []
    out = []
    for line, target in sorted(_imported_layers(path)):
        if RANK[target] > RANK[layer] or target in FORBIDDEN.get(layer, ()):
            out.append(f"{path.relative_to(REPO)}:{line} imports my_affectgpt.{target}")
    return out


def test_imports_point_down():
    assert [v for p in _modules() for v in _violations(p)] == []


@pytest.mark.parametrize("source, layer, ok", [
    ("from my_affectgpt.training.au_sft import load_config\n", "models", False),
    ("def f():\n    from my_affectgpt.models import base_llm\n", "common", False),
    ("from ..training import merge\n", "inference", False),
    ("from my_affectgpt.evaluation.emotion_eval import score\n", "inference", True),
    ("from my_affectgpt import datasets\n", "au", False),
    ("from my_affectgpt.common.errors import InputError\nfrom ..au import facs\n", "models", True),
    ("from . import sibling\n", "training", True),
])
def test_the_layer_check_sees_every_import_form(tmp_path, monkeypatch, source, layer, ok):
    fake = PACKAGE / layer / "_layout_probe.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert (_violations(fake) == []) == ok


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}

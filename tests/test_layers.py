"""Dependency layers (ARCHITECTURE.md §4.1), checked on the source with ``ast``."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules a layer must never import (at any point in its source).
FORBIDDEN = {
    "sim": {
        "gymnasium",
        "matplotlib",
        "pettingzoo",
        "stable_baselines3",
        "edgetwin.agents",
        "edgetwin.envs",
        "edgetwin.scenarios",
        "edgetwin.kernels",
    },
    "agents/protocol.py": {"torch", "gymnasium", "matplotlib", "sionna", "edgetwin.scenarios"},
    "agents/registry.py": {"torch", "gymnasium", "matplotlib", "sionna", "edgetwin.scenarios"},
    "agents/baselines": {
        "torch",
        "gymnasium",
        "matplotlib",
        "sionna",
        "edgetwin.scenarios",
        "edgetwin.envs",
    },
}
# sim may import torch/sionna only inside functions of its optional channel backends.
LAZY_ONLY = {"sim": {"sionna", "drjit", "mitsuba", "torch"}}
TORCH_ALLOWED_IN = {"sim/radio/channel_sionna.py", "sim/radio/channel_raytraced.py"}


def _imports(tree: ast.AST, top_level_only: bool):
    nodes = tree.body if top_level_only else list(ast.walk(tree))  # type: ignore[attr-defined]
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.If) and top_level_only:
            # `if TYPE_CHECKING:` blocks are allowed to import anything.
            test = node.test
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                continue
            yield from _imports(ast.Module(body=node.body, type_ignores=[]), True)


def _files(layer: str):
    p = ROOT / layer
    return [p] if p.suffix == ".py" else sorted(p.rglob("*.py"))


def _violates(module: str, banned: set[str]) -> bool:
    return any(module == b or module.startswith(b + ".") for b in banned)


def _type_checking_free(tree: ast.Module) -> ast.Module:
    body = [
        n
        for n in tree.body
        if not (
            isinstance(n, ast.If) and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"
        )
    ]
    return ast.Module(body=body, type_ignores=[])


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_forbidden_imports(layer):
    bad = []
    for f in _files(layer):
        tree = _type_checking_free(ast.parse(f.read_text()))
        bad += [
            f"{f.relative_to(ROOT)}: {m}"
            for m in _imports(tree, False)
            if _violates(m, FORBIDDEN[layer])
        ]
        if layer == "sim" and str(f.relative_to(ROOT)) not in TORCH_ALLOWED_IN:
            bad += [
                f"{f.relative_to(ROOT)}: {m}"
                for m in _imports(tree, False)
                if _violates(m, {"torch"})
            ]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("layer", sorted(LAZY_ONLY))
def test_heavy_backends_imported_lazily(layer):
    bad = []
    for f in _files(layer):
        tree = ast.parse(f.read_text())
        bad += [
            f"{f.relative_to(ROOT)}: {m}"
            for m in _imports(tree, True)
            if _violates(m, LAZY_ONLY[layer])
        ]
    assert not bad, "module-level imports of heavy backends:\n" + "\n".join(bad)

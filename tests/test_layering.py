"""The package's layering, as the README's "Layers" block states it: a module imports (at the
top or inside a function) only modules of its own layer or below, and every module has a layer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mp2v4rec"


def readme_layers() -> dict[str, int]:
    """``module or package -> layer`` from the README's block between the layer markers."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- layers -->\n```text\n(.*?)```", text, re.S).group(1)
    layers = {}
    for line in block.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            layers.update({name: int(parts[0]) for name in parts[1:]})
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in layers:
            return layers[".".join(parts[:n])]
    return None


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mp2v4rec"):
            if node.module == "mp2v4rec":
                found |= {alias.name for alias in node.names}
            else:
                found.add(node.module.removeprefix("mp2v4rec."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("mp2v4rec.")
                for a in node.names
                if a.name.startswith("mp2v4rec.")
            }
    return found


def test_no_module_imports_one_above_it():
    layers = readme_layers()
    assert layers, "the README has no layer block"
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if module.endswith("__init__"):
            continue
        own = layer_of(module, layers)
        if own is None:
            problems.append(f"{module} has no layer in the README")
            continue
        for target in imports(path):
            theirs = layer_of(target, layers)
            if theirs is None or theirs > own:
                problems.append(f"{module} (layer {own}) imports {target} (layer {theirs})")
    assert not problems, "\n".join(problems)

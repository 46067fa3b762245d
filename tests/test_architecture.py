"""The architecture's rules (docs/ARCHITECTURE.md), read from the source: imports run one way, no circles.

1. ``deploy`` imports neither torch nor ``rc_snn`` (checked by importing it with both blocked).
2. Inside ``rc_snn`` only ``rc_snn.pipeline`` imports ``deploy``; everything else may use
   ``deploy.files`` alone (the project's one atomic writer, standard library only).
3. No import circle among the modules of ``rc_snn`` and ``deploy``, counting imports inside
   functions too (a circle through a deferred import is still a circle in the design).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rc_snn", "deploy")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def raw_imports(name: str, path: Path) -> set:
    """Every module ``name`` imports, anywhere in its source (absolute names, any package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def imports_of(name: str, path: Path) -> set:
    """Every project module ``name`` imports, anywhere in its source."""
    known = modules()
    return {target for target in raw_imports(name, path) if target in known and target != name}


def import_graph() -> dict:
    return {name: imports_of(name, path) for name, path in modules().items()}


def test_deploy_imports_without_torch_or_rc_snn():
    blocked = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'rc_snn'):
            raise ImportError(f'deploy must not import {name}')
sys.meta_path.insert(0, Block())
import deploy
for info in pkgutil.walk_packages(deploy.__path__, 'deploy.'):
    if not info.name.startswith('deploy.lava_procs'):  # Lava's own processes: imported by Lava at run time
        importlib.import_module(info.name)
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_deploy_source_names_neither_torch_nor_rc_snn():
    """Also imports inside functions, which importing the package does not run."""
    offenders = {
        name: sorted(target for target in raw_imports(name, path) if target.split(".")[0] in ("torch", "rc_snn"))
        for name, path in modules().items() if name.startswith("deploy")
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_only_the_pipeline_imports_deploy():
    offenders = {
        name: sorted(target for target in targets if target.startswith("deploy") and target != "deploy.files")
        for name, targets in import_graph().items()
        if name.startswith("rc_snn") and not name.startswith("rc_snn.pipeline")
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_no_import_circle():
    graph = import_graph()
    # Package __init__ modules are not edges of the design: `import a.b` runs a/__init__ first.
    graph = {name: {t for t in targets if not modules()[t].name == "__init__.py"} for name, targets in graph.items()}
    visiting, done, circles = [], set(), []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            circles.append(visiting[visiting.index(name):] + [name])
            return
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert circles == []


def test_the_graph_sees_imports_a_circle_would_use():
    """Guards the two tests above against a parser that finds nothing."""
    graph = import_graph()
    assert "rc_snn.pipeline.demo" in graph["rc_snn.pipeline.cli"]  # a module-level relative import
    assert "deploy.ir" in graph["rc_snn.pipeline.cli"]  # an import inside a function
    assert "deploy.files" in graph["rc_snn.training.config"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_a_god_module(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job (limit {MAX_LINES})"

"""Architecture rules: core never imports Qt, the app never imports the training package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked import: ' + name)
sys.meta_path.insert(0, Block())
import pkgutil, importlib
import {package} as pkg
for m in pkgutil.walk_packages(getattr(pkg, '__path__', []), pkg.__name__ + '.'):
    importlib.import_module(m.name)
print('ok')
"""


@pytest.mark.parametrize("package, blocked", [
    ("rcdnet_desktop.core", ("PySide6", "shiboken6", "training")),
    ("rcdnet_desktop.cli", ("PySide6", "shiboken6", "training")),
])
def test_import_without(package, blocked):
    code = BLOCKER.format(blocked=set(blocked), package=package)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_gui_does_not_import_training():
    offenders = [p for p in (ROOT / "rcdnet_desktop").rglob("*.py")
                 if "import training" in p.read_text() or "from training" in p.read_text()]
    assert offenders == []


def test_importing_core_and_cli_does_not_import_torch():
    code = ("import sys, rcdnet_desktop.cli, rcdnet_desktop.core.io, rcdnet_desktop.core.types;"
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.stdout.strip() == "False", res.stderr


def test_atomic_write_is_the_only_file_writer():
    """Files are written only by core.atomic (temporary file, fsync, rename): no other
    module of the application opens a file for writing, renames one into place or makes a
    temporary file (the self-test's settings folder, a directory Qt writes into, aside)."""
    import re

    writer = re.compile(r"open\([^)]*[\"'][wax]b?\+?[\"']|\.write_text\(|os\.replace\(|"
                        r"os\.rename\(|tempfile\.mkstemp\(|NamedTemporaryFile\(|shutil\.(copy|move)")
    allowed = {ROOT / "rcdnet_desktop" / "core" / "atomic.py"}
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "rcdnet_desktop").rglob("*.py")
                 if p not in allowed
                 for n, line in enumerate(p.read_text().splitlines(), start=1)
                 if writer.search(line)]
    assert offenders == []


def _app_sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted((ROOT / "rcdnet_desktop").rglob("*.py"))]


def test_the_app_writes_no_weights_graphs_or_cards():
    """Bundles (weights, ONNX graphs, guard, lexicon, card) are written by the training package
    only (training/bundle_write.py, training/onnx_export.py): the application reads and verifies
    them. No module of the application defines one of the writers, exports a graph, saves
    tensors or writes a file named after the card."""
    import ast

    import training.bundle_write
    import training.onnx_export

    writers = set(training.bundle_write.__all__) | {
        name for name in vars(training.onnx_export)
        if name.startswith(("export_", "classifier_onnx", "localiser_onnx"))}
    offenders = []
    for path, text in _app_sources():
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in writers:
                offenders.append(f"{where}:{node.lineno}: defines {node.name}")
            elif isinstance(node, ast.Call):
                call = ast.unparse(node.func)
                if call.endswith(("onnx.export", "torch.save", "onnx.save", "onnx.save_model")):
                    offenders.append(f"{where}:{node.lineno}: calls {call}")
                elif "atomic_write" in call and "CARD_FILE" in ast.unparse(node):
                    offenders.append(f"{where}:{node.lineno}: writes the model card")
    assert offenders == []


def test_no_private_library_modules():
    """Only libraries' public APIs: no import of a private module (``highdicom._...``,
    ``pydicom._...``), which may change without notice between releases."""
    import re

    private = re.compile(r"^\s*(from|import)\s+(highdicom|pydicom|pynetdicom)(\.\w+)*\._")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p, text in _app_sources()
                 for n, line in enumerate(text.splitlines(), start=1) if private.search(line)]
    assert offenders == []


def _module_files(package: Path) -> dict[str, Path]:
    """Each module of the package in the folder ``package``, by its dotted name."""
    modules: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = tuple(path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(package: Path, *, type_checking: bool = True) -> dict[str, set[str]]:
    """Each module of ``package`` and the modules of that package it imports, read with
    ``ast``: at the top and inside functions alike, and (``type_checking``) under
    ``TYPE_CHECKING``."""
    modules = _module_files(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        pending: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
        while pending:
            node = pending.pop()
            if not type_checking and _is_type_checking(node):
                pending.extend(node.orelse)
                continue
            pending.extend(ast.iter_child_nodes(node))
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # "from package import module" imports the module, not only the package
                named = {f"{source}.{alias.name}" for alias in node.names} & modules.keys()
                targets.update(named or {source})
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _gui_imports() -> dict[str, set[str]]:
    """Each module of ``rcdnet_desktop.gui`` and the modules of the viewer it imports: at the
    top, inside functions and under ``TYPE_CHECKING`` alike."""
    return _imports(ROOT / "rcdnet_desktop" / "gui")


def _app_imports() -> dict[str, set[str]]:
    """Each module of ``rcdnet_desktop`` and the modules of the application it imports: at the
    top, inside functions and under ``TYPE_CHECKING`` alike (a type named in an annotation is
    a dependency too, even when it is never imported at run time)."""
    return _imports(ROOT / "rcdnet_desktop")


def _layer(module: str) -> str:
    """``shared`` for the modules directly in ``rcdnet_desktop.gui`` (``app`` aside), the
    sub-package's name for the others."""
    parts = module.split(".")[2:]
    if not parts or (len(parts) == 1 and parts[0] != "app"):
        return "shared"
    return parts[0]


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` (its modules in order), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the path being followed, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_gui_graph_is_read():
    """The reader sees the viewer's imports (else the two tests below would pass on nothing)."""
    graph = _gui_imports()
    assert "rcdnet_desktop.gui.window.main_window" in graph["rcdnet_desktop.gui.app"]
    assert "rcdnet_desktop.gui.theme" in graph["rcdnet_desktop.gui.window.main_window"]
    # an import inside a function counts
    assert "rcdnet_desktop.gui.pacs.query_dialog" in graph["rcdnet_desktop.gui.window.main_window"]


def test_gui_has_no_import_circle():
    assert _cycle(_gui_imports()) == []


def test_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_gui_imports_only_downwards():
    """Each module imports from its own layer or lower ones, in the order of
    ``rcdnet_desktop.gui.LAYERS`` (documented in the package's docstring)."""
    from rcdnet_desktop.gui import LAYERS

    graph = _gui_imports()
    unplaced = sorted({_layer(m) for m in graph} - set(LAYERS))
    assert unplaced == [], "sub-packages missing from rcdnet_desktop.gui.LAYERS"
    upwards = [f"{m} -> {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
               if LAYERS.index(_layer(t)) > LAYERS.index(_layer(m))]
    assert upwards == []


def _app_layer(module: str, packages: set[str]) -> str:
    """The layer of ``rcdnet_desktop.LAYERS`` a module is in: its sub-package's name, ``cli``
    for the modules directly in ``rcdnet_desktop``, ``""`` for the package's own file."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if len(parts) == 1 and module not in packages:
        return "cli"
    return parts[0]


def _core_layer(module: str, packages: set[str]) -> str:
    """The layer of ``rcdnet_desktop.core.LAYERS`` a module of the core is in."""
    from rcdnet_desktop import core

    parts = module.split(".")[2:]
    if not parts:
        return "base"
    if f"rcdnet_desktop.core.{parts[0]}" in packages:
        return parts[0]
    return core.PLACED.get(parts[0], "base")


def _packages() -> set[str]:
    return {m for m, p in _module_files(ROOT / "rcdnet_desktop").items()
            if p.name == "__init__.py"}


def test_app_graph_is_read():
    """The reader sees the application's imports, inside functions and under TYPE_CHECKING
    too."""
    graph = _app_imports()
    assert "rcdnet_desktop.core.model.engine" in graph["rcdnet_desktop.gui.session.engine"]
    assert "rcdnet_desktop.core.model.torch_backend" in graph["rcdnet_desktop.core.model.runtime"]
    assert "rcdnet_desktop.core.model.network" in graph["rcdnet_desktop.core.model.engine"]
    assert "rcdnet_desktop.core.types" in graph["rcdnet_desktop.core.model.engine"]


def test_app_has_no_import_circle():
    """No modules of the application import each other in a circle, counting the imports
    inside functions: a circle hides which module needs which."""
    assert _cycle(_app_imports()) == []


def test_app_imports_only_downwards():
    """Each module imports from its own layer or lower ones: ``rcdnet_desktop.LAYERS`` across
    the application, ``rcdnet_desktop.core.LAYERS`` inside the core."""
    import rcdnet_desktop
    from rcdnet_desktop import core

    graph, packages = _app_imports(), _packages()
    top = {m: _app_layer(m, packages) for m in graph}
    unplaced = sorted({layer for layer in top.values() if layer} - set(rcdnet_desktop.LAYERS))
    assert unplaced == [], "sub-packages missing from rcdnet_desktop.LAYERS"
    inner = {m: _core_layer(m, packages) for m in graph if top[m] == "core"}
    unplaced = sorted(set(inner.values()) - set(core.LAYERS))
    assert unplaced == [], "sub-packages or PLACED layers missing from rcdnet_desktop.core.LAYERS"

    def rank(m: str) -> tuple[int, int]:
        outer = rcdnet_desktop.LAYERS.index(top[m]) if top[m] else -1
        return outer, core.LAYERS.index(inner[m]) if m in inner else 0

    upwards = [f"{m} -> {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
               if rank(t) > rank(m) and (top[t] != top[m] or top[m] == "core")]
    assert upwards == []

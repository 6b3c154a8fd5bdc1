"""The package's layers: each module imports only its own layer or the layers below.

From the bottom: backends, engine, ops, {nn, optim, data}, {training, course, testing}, cli.
``chainrule/__init__.py``, ``_compat.py``, ``_version.py`` and ``__main__.py`` glue the layers
together and are exempt. Checked on the source with ``ast``, so a violation is reported by file
and line without importing anything: module-level imports (also inside ``if``/``try`` and class
bodies, which run at import time) must not go up; an import inside a function (a lazy import,
run on first use) may go up only at the spots listed in ``LAZY_UPWARD``.

And ``import chainrule`` stays light: the optional and heavy packages import on first use only.
"""

import ast
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Optional

import chainrule
from chainrule._compat import MOVED

SOURCE = Path(chainrule.__file__).resolve().parent
ROOT = SOURCE.parent  # src/

#: sub-package -> layer (0: bottom)
LAYER = {"backends": 0, "_version": 0, "engine": 1, "ops": 2, "nn": 3, "optim": 3, "data": 3,
         "training": 4, "distributed": 4, "course": 4, "testing": 4, "onnx": 4, "cli": 5}
#: ``import chainrule`` itself: the package imports nn, optim and data eagerly (the rest lazily)
PACKAGE_LAYER = 3
#: modules whose layer is not their folder's: transforms and gradcheck are the engine's user-facing
#: half, written on top of ops (grad of a function is ops all the way down)
MODULE_LAYER = {"chainrule.engine.transforms": 3, "chainrule.engine.gradcheck": 3}
#: the one upward import allowed at module level: backends raise the engine's error types
ALLOWED_UPWARD = {("backends", "chainrule.engine.errors")}
#: the engine's core and ops call each other by design (a Tensor's operators are ops; the backward
#: pass adds and sums gradients with ops): these two modules import ops after their own classes
#: are defined, and nowhere else does the engine's core reach up
CYCLE = {("chainrule.engine.tensor", "chainrule.ops"),
         ("chainrule.engine.autograd", "chainrule.ops")}
EXEMPT = {"__init__.py", "_compat.py", "_version.py", "__main__.py"}  # directly under chainrule/
#: (importing module, imported module): function-level imports that may go up a layer, and why
LAZY_UPWARD: dict[tuple[str, str], str] = {
}
#: packages ``import chainrule`` must not import (optional, heavy, or test-only)
#: the modules and sub-packages directly under chainrule/
SUBMODULES = {"chainrule." + p.stem for p in SOURCE.glob("*.py")} | {
    "chainrule." + p.name for p in SOURCE.iterdir() if (p / "__init__.py").exists()}
HEAVY = ("scipy", "safetensors", "matplotlib", "tqdm", "sklearn", "graphviz", "cupy",
         "array_api_strict", "torch", "mpi4py", "numba", "llvmlite", "onnx", "onnxruntime")


def _modules() -> Iterator[tuple[Path, str]]:
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if len(relative.parts) == 1 and relative.name in EXEMPT:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name an ``ImportFrom`` refers to (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The chainrule modules an import statement loads (``from chainrule import ops`` -> ops)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "chainrule"]
    assert isinstance(node, ast.ImportFrom)
    source = _resolve(module, is_package, node)
    if source.split(".")[0] != "chainrule":
        return []
    if source != "chainrule":
        return [source]
    # ``from chainrule import X``: the sub-package X, or a name of the package itself
    return [f"chainrule.{a.name}" if f"chainrule.{a.name}" in SUBMODULES else "chainrule"
            for a in node.names]


def _layer_of(name: str) -> Optional[int]:
    """The layer of module ``name`` (old paths through _compat's aliases); None: exempt."""
    name = MOVED.get(name, name)
    parts = name.split(".")
    if len(parts) == 1:
        return PACKAGE_LAYER
    if name in MODULE_LAYER:
        return MODULE_LAYER[name]
    return LAYER.get(parts[1])


def _imports(path: Path) -> Iterator[tuple[ast.stmt, bool]]:
    """(import statement, inside a function) for every import of the file; imports guarded by
    ``if TYPE_CHECKING:`` never run and are left out."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.stmt, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    yield from walk(other, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.Lambda))
            yield from walk(child, nested)

    yield from walk(ast.parse(path.read_text(), filename=str(path)), False)


def layering_violations() -> tuple[list[str], set[tuple[str, str]]]:
    """(violations as 'file:line: message', lazy spots that were used)."""
    violations, used = [], set()
    for path, module in _modules():
        own = MODULE_LAYER.get(module, LAYER[module.split(".")[1]])
        is_package = path.name == "__init__.py"
        for node, lazy in _imports(path):
            for target in _targets(module, is_package, node):
                layer = _layer_of(target)
                if layer is None or layer <= own:
                    continue
                if (module.split(".")[1], MOVED.get(target, target)) in ALLOWED_UPWARD:
                    continue
                if (module, ".".join(target.split(".")[:2])) in CYCLE:
                    continue
                where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
                if lazy and (module, MOVED.get(target, target)) in LAZY_UPWARD:
                    used.add((module, MOVED.get(target, target)))
                    continue
                kind = "lazy import (not a listed lazy spot)" if lazy else "module-level import"
                violations.append(f"{where}: {kind} of {target} (layer {layer}) from {module} "
                                  f"(layer {own})")
    return violations, used


def test_imports_go_to_the_same_layer_or_below():
    violations, _ = layering_violations()
    for line in violations:
        print(line)
    assert not violations, "imports against the layering:\n" + "\n".join(violations)


def test_every_listed_lazy_spot_exists():
    _, used = layering_violations()
    assert set(LAZY_UPWARD) <= used, f"stale LAZY_UPWARD entries: {set(LAZY_UPWARD) - used}"


def test_import_chainrule_leaves_the_heavy_packages_out():
    probe = ("import sys, chainrule; "
             f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    imported = result.stdout.split()
    assert not imported, f"import chainrule imported {imported}"

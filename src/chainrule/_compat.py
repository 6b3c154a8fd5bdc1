"""Module paths from before chainrule had folders: ``chainrule.tensor``, ``chainrule.runs`` ...

``import chainrule.analysis`` and ``from chainrule.runs import train_run`` keep working: a finder on
``sys.meta_path`` answers each old name with the module at its new place (the same object, so
``chainrule.analysis is chainrule.course.analysis``). It resolves nothing until such an import runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Optional, Sequence

#: old path -> new path
MOVED = {
    "chainrule.tensor": "chainrule.engine.tensor",
    "chainrule.autograd": "chainrule.engine.autograd",
    "chainrule.grad_mode": "chainrule.engine.grad_mode",
    "chainrule.hooks": "chainrule.engine.hooks",
    "chainrule.transforms": "chainrule.engine.transforms",
    "chainrule.gradcheck": "chainrule.engine.gradcheck",
    "chainrule.errors": "chainrule.engine.errors",
    "chainrule.train": "chainrule.training.fit",
    "chainrule.runs": "chainrule.training.runs",
    "chainrule.checkpoint": "chainrule.training.checkpoint",
    "chainrule.plots": "chainrule.training.plots",
    "chainrule.constructions": "chainrule.course.constructions",
    "chainrule.analysis": "chainrule.course.analysis",
    "chainrule.explain": "chainrule.course.explain",
    "chainrule.calculator": "chainrule.course.calculator",
    "chainrule.shapes": "chainrule.course.shapes",
    "chainrule.opinfo": "chainrule.testing.opinfo",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module at the new one."""

    def find_spec(self, name: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the alias's spec on the module: give it back its own
        module.__spec__ = _own_spec(module)


def _own_spec(module: ModuleType) -> importlib.machinery.ModuleSpec:
    spec = importlib.util.find_spec(module.__name__)
    assert spec is not None
    return spec


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())

"""Sphinx directives that write chainrule's API pages from the code, so a new op needs no edit here.

* ``.. chainrule-family:: activations`` documents every name of ``chainrule.ops.activations``'s
  ``__all__`` where users call it, ``chainrule.<name>``, after the family's module docstring.
* ``.. chainrule-tensor::`` documents ``Tensor``, linking the methods that the op families add to
  it to their functions.
* ``.. chainrule-functional::`` tables ``chainrule.nn.functional``: each name links to the function
  it re-exports (documented once, in its family).
* At the end of reading, every name of ``chainrule.__all__`` must have been documented, as
  ``chainrule.<name>`` or where it is defined (a warning, so an error under ``-W``, names each one
  that is missing).
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def _directive_for(value: Any) -> str:
    if isinstance(value, type):
        return "autoexception" if issubclass(value, BaseException) else "autoclass"
    if callable(value):
        return "autofunction"
    return "autodata"


class FamilyDirective(SphinxDirective):
    """``chainrule-family:: NAME``: the module docstring of ``chainrule.ops.NAME``, then each name
    of its ``__all__`` as ``chainrule.<name>``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        family = importlib.import_module(f"chainrule.ops.{self.arguments[0]}")
        self.env.note_dependency(family.__file__)  # a new op re-reads the page
        lines = [f".. automodule:: {family.__name__}", "", ".. currentmodule:: chainrule", ""]
        for name in family.__all__:
            value = getattr(family, name)
            lines.append(f".. {_directive_for(value)}:: {name}")
            if isinstance(value, type) and not issubclass(value, BaseException):
                lines.append("   :members:")
            lines.append("")
        return self.parse_text_to_nodes("\n".join(lines))


class FunctionalDirective(SphinxDirective):
    """``chainrule-functional``: a table of ``F.<name>`` -> the chainrule function and its
    docstring's first line."""

    def run(self) -> list[nodes.Node]:
        import chainrule
        from chainrule.nn import functional

        self.env.note_dependency(functional.__file__)
        by_id = {id(getattr(chainrule, n)): n for n in chainrule.__all__ if hasattr(chainrule, n)}
        lines = [".. list-table::", "   :header-rows: 1", "", "   * - ``F.`` name",
                 "     - chainrule function", "     - what it computes"]
        for name in sorted(n for n in vars(functional) if not n.startswith("_")):
            value = getattr(functional, name)
            if isinstance(value, types.ModuleType):
                continue
            target = by_id.get(id(value))
            if target is None:
                logger.warning("chainrule.nn.functional.%s is not a chainrule function", name,
                               location=self.get_location())
                continue
            summary = (inspect.getdoc(value) or "").split("\n\n")[0].replace("\n", " ")
            lines += [f"   * - ``{name}``", f"     - :func:`chainrule.{target}`",
                      f"     - {summary}"]
        return self.parse_text_to_nodes("\n".join(lines))


class TensorDirective(SphinxDirective):
    """``chainrule-tensor``: ``Tensor``'s own members, then the methods that the op families set
    on it (``ops/__init__.py``), each linked to its function instead of documented twice."""

    def run(self) -> list[nodes.Node]:
        import chainrule
        from chainrule import ops

        public = {id(getattr(chainrule, n)): n for n in chainrule.__all__}
        installed = {}
        for family in ops._FAMILIES:  # the families that list TENSOR_METHODS
            self.env.note_dependency(family.__file__)
            installed.update(getattr(family, "TENSOR_METHODS", {}))
        linked = {name: public[id(f)] for name, f in installed.items() if id(f) in public}
        items = [f"``{name}`` (:func:`~chainrule.{target}`)" if name != target
                 else f":func:`~chainrule.{target}`" for name, target in sorted(linked.items())]
        lines = [".. autoclass:: chainrule.Tensor", "   :members:",
                 f"   :exclude-members: {', '.join(sorted(linked))}", "",
                 "   Methods set by the op families: ``x.name(*args)`` is"
                 " ``chainrule.name(x, *args)`` for", "   " + ", ".join(items) + ".", ""]
        return self.parse_text_to_nodes("\n".join(lines))


def _check_top_level(app: Any, env: Any) -> None:
    """Warn for each public name of ``chainrule`` that no page documents, under that name or
    where it is defined (``chainrule.Device`` is documented as ``chainrule.backends.Device``)."""
    import chainrule

    documented = env.get_domain("py").objects
    for name in chainrule.__all__:
        value = getattr(chainrule, name)
        if isinstance(value, types.ModuleType) or name == "__version__":
            continue
        home = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
        if f"chainrule.{name}" not in documented and home not in documented:
            logger.warning("chainrule.%s is public (chainrule.__all__) but no page documents it",
                           name, type="chainrule", subtype="api")


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("chainrule-family", FamilyDirective)
    app.add_directive("chainrule-functional", FunctionalDirective)
    app.add_directive("chainrule-tensor", TensorDirective)
    app.connect("env-check-consistency", _check_top_level)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

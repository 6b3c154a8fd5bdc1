"""Sphinx configuration of chainrule's documentation site.

Build (warnings are errors; ``-T`` prints the traceback of a notebook cell that fails)::

    python -m sphinx -T -W --keep-going -b html docs docs/_build/html

The notebooks of ``notebooks/`` are copied into ``docs/_notebooks/`` (ignored by git) when the
build starts and executed by myst-nb, so the site shows their outputs and a notebook that raises
fails the build. ``-D chainrule_notebooks=DIR`` takes the notebooks from DIR instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from sphinx.application import Sphinx

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SRC = ROOT / "src"

# Document (and run the notebooks against) this checkout's chainrule, whatever else is installed:
# autodoc imports from sys.path, the notebooks' kernels inherit PYTHONPATH.
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(DOCS / "_ext"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

from chainrule._version import __version__  # noqa: E402

project = "chainrule"
author = "the chainrule authors"
copyright = "the chainrule authors"
version = release = __version__

# No napoleon: no docstring here has Google or NumPy sections (Args:, Returns:), and napoleon
# would read a property's "Where the data lives: ..." as "type: description".
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",  # Markdown pages (myst-parser) and notebooks
    "chainrule_api",  # docs/_ext: the op families, F.* table, check that every public name is in
]

# notebooks/README.md is included by notebooks.md, not a page of its own
exclude_patterns = ["_build", "_ext", "**/.ipynb_checkpoints", "**/runs", "_notebooks/README.md"]
html_theme = "furo"
html_title = f"chainrule {release}"
templates_path: list[str] = []

# autodoc: members in source order, as the modules group them; signatures keep their type hints.
autodoc_member_order = "bysource"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True  # `dtype=None`, not the default's repr after evaluation
autodoc_default_options = {"show-inheritance": True}

# MyST: $...$ and $$...$$ math, ::: fences; anchors for headings down to ### so that
# `benchmarks.md#issue-11-distributed` links resolve.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# myst-nb: run every notebook (and conventions.md) at each build, in its own folder: they are
# committed without outputs. A cell that raises, or runs longer than nb_execution_timeout seconds,
# stops the build (sphinx -T prints the cell and its traceback).
nb_execution_mode = "force"
nb_execution_timeout = 120
nb_execution_raise_on_error = True
nb_merge_streams = True


def _copy_notebooks(app: Sphinx) -> None:
    """Replace docs/_notebooks/ with a fresh copy of the notebook folder (and whatever files the
    notebooks read next to them), before Sphinx looks for source files."""
    source = Path(app.config.chainrule_notebooks or ROOT / "notebooks")
    target = DOCS / "_notebooks"
    shutil.rmtree(target, ignore_errors=True)
    if not source.is_dir():
        raise FileNotFoundError(f"chainrule_notebooks: {source} is not a folder of notebooks")
    shutil.copytree(source, target,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "runs", "__pycache__"))


def setup(app: Sphinx) -> None:
    app.add_config_value("chainrule_notebooks", "", "env", types=[str])
    app.connect("builder-inited", _copy_notebooks)

"""Strip outputs, execution counts and metadata noise from the notebooks in this folder.

    python notebooks/clean.py            # rewrite every notebook here that is not clean
    python notebooks/clean.py --check    # only name them, and exit 1 if there is one

Committed notebooks hold code and text only (tests/test_notebooks.py checks it): the outputs are
made by whoever runs them (JupyterLab, the test suite, the documentation build). Cell ids and cell
tags stay (myst-nb reads tags such as ``remove-input``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
#: every notebook here runs on the kernel of the Python that opens it
METADATA = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                           "name": "python3"},
            "language_info": {"name": "python"}}
KEPT_CELL_METADATA = ("tags",)


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without outputs and execution counts, with only the ``tags`` of each
    cell's metadata, and with the notebook's metadata reduced to :data:`METADATA` (Jupyter adds
    the Python version, widths, collapsed states, timings ...)."""
    result = nbformat.from_dict(notebook)
    result.metadata = nbformat.from_dict(METADATA)
    for cell in result.cells:
        cell.metadata = nbformat.from_dict(
            {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return result


def clean_text(path: Path) -> tuple[str, str]:
    """(the file's text, the text of its clean version), in nbformat's own layout."""
    text = path.read_text(encoding="utf-8")
    cleaned = nbformat.writes(clean(nbformat.reads(text, as_version=4)))
    return text, cleaned if cleaned.endswith("\n") else cleaned + "\n"


def _write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        shutil.copymode(path, temporary)  # mkstemp's file is private (0600)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main(argv: list[str] | None = None) -> int:
    """Clean the notebooks named (default: all in this folder); 1 with ``--check`` if any was
    not clean."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing, exit 1 if unclean")
    args = parser.parse_args(argv)
    unclean = []
    for path in args.notebooks or sorted(HERE.glob("*.ipynb")):
        text, cleaned = clean_text(path)
        if text != cleaned:
            unclean.append(path)
            if not args.check:
                _write_atomically(path, cleaned)
            print(f"{'not clean' if args.check else 'cleaned'}: {path}")
    return 1 if args.check and unclean else 0


if __name__ == "__main__":
    sys.exit(main())

"""The course notebooks in notebooks/: each runs headless without an error (its cells assert their
key numbers against NumPy closed forms and finite differences, so a wrong library number fails
here), shows its plots inline, and is committed clean (no outputs, no execution counts, no
metadata noise: the check CI runs).

The notebooks run on a kernel of this very Python (the kernel spec ipykernel builds from
``sys.executable``, whatever kernels the user has installed), in a temporary working folder,
without ``MPLBACKEND`` (so ``%matplotlib inline`` is what draws). They run a few at a time (each
kernel is a process of its own; kernel start and imports are most of their time) in one fixture,
the first time a notebook's test asks for it; each test then reports its own notebook.
"""

import asyncio
import os
import re
import runpy
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
IDS = [path.stem for path in NOTEBOOKS]
#: wall-clock seconds for one whole notebook, kernel start included (each takes 5-15 s on 2 cores)
NOTEBOOK_SECONDS = 180
#: notebooks executed at once
AT_ONCE = 3
#: notebook -> how many graphs (SVG) it draws (through `dot`, or chainrule's own layout without it)
GRAPHS = {"02_graph_and_gradient_table": 2, "03_mlp_backprop": 1}
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of IPython's tracebacks

#: (the file's text, the text of its clean version), from notebooks/clean.py
clean_text = runpy.run_path(str(FOLDER / "clean.py"))["clean_text"]


class ThisPythonKernel(AsyncKernelManager):
    """Starts "python3" from ipykernel's own kernel spec, whose argv[0] is ``sys.executable``: no
    kernel.json installed for the user or the system can send it to another interpreter."""

    @default("kernel_spec_manager")
    def _only_the_native_kernel(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[])


async def _execute(path: Path, workdir: Path, slots: asyncio.Semaphore) -> dict:
    """Run one notebook: {"notebook": the executed notebook, "seconds": ..., "error": ...}."""
    notebook = nbformat.read(path, as_version=4)
    async with slots:
        started = time.monotonic()
        deadline = started + NOTEBOOK_SECONDS
        client = NotebookClient(
            notebook, kernel_manager_class=ThisPythonKernel, kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
            timeout_func=lambda cell: max(1.0, deadline - time.monotonic()),  # per notebook
            startup_timeout=NOTEBOOK_SECONDS,
            allow_errors=True)  # every cell runs; the test reports the first error itself
        environment = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
        error = None
        try:
            await client.async_execute(env=environment)
        except Exception as exc:  # noqa: BLE001 -- reported by the notebook's own test
            error = exc
        return {"notebook": notebook, "seconds": time.monotonic() - started, "error": error}


async def _execute_all(paths: list[Path], workdir: Path) -> dict:
    slots = asyncio.Semaphore(AT_ONCE)
    results = await asyncio.gather(*(_execute(p, workdir, slots) for p in paths))
    return dict(zip([p.stem for p in paths], results))


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory):
    """Every notebook this session's selection tests, executed (a few at once)."""
    chosen = {item.callspec.params["path"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_notebook_runs"} or {NOTEBOOKS[0]}
    workdir = tmp_path_factory.mktemp("notebook-cwd")
    return asyncio.run(_execute_all(sorted(chosen), workdir))


def test_there_is_a_notebook_per_topic():
    assert len(NOTEBOOKS) >= 7, IDS


def test_the_kernel_is_this_python():
    assert ThisPythonKernel(kernel_name="python3").kernel_spec.argv[0] == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, executed):
    result = executed[path.stem]
    if result["error"] is not None:
        pytest.fail(f"{path.name}: {result['error']}", pytrace=False)
    cells = [cell for cell in result["notebook"].cells if cell.cell_type == "code"]
    for cell in cells:
        for out in cell.outputs:
            if out.output_type == "error":
                trace = ANSI.sub("", "\n".join(out.traceback))
                pytest.fail(f"{path.name}, cell {cell.id}:\n{cell.source}\n\n{trace}",
                            pytrace=False)
    shown = [kind for cell in cells for out in cell.outputs for kind in out.get("data", {})]
    assert "image/png" in shown, f"{path.name} shows no matplotlib figure inline"
    assert shown.count("image/svg+xml") == GRAPHS.get(path.stem, 0), path.name
    print(f"{path.stem}: {result['seconds']:.1f} s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_clean(path):
    text, cleaned = clean_text(path)
    assert text == cleaned, f"{path.name} has outputs or metadata: run python notebooks/clean.py"


def test_clean_strips_what_running_adds(executed, tmp_path):
    """Cleaning turns an executed notebook back into the committed file."""
    name, result = next(iter(executed.items()))
    run = tmp_path / f"{name}.ipynb"
    nbformat.write(result["notebook"], run)
    text, cleaned = clean_text(run)
    assert text != cleaned  # outputs, counts, timings and language_info were there
    assert cleaned == (FOLDER / run.name).read_text(encoding="utf-8")

import functools
from typing import Optional

import numpy as np
import pytest

import chainrule as cr

#: backend name -> the device string its tensors report (Tensor.device.type)
BACKEND_DEVICES = {"numpy": "cpu", "array_api_strict": "array_api_strict", "cupy": "cuda"}
#: backends every run must have (the test extra installs array_api_strict); the others may skip
OPTIONAL_BACKENDS = ("cupy",)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@functools.lru_cache(maxsize=None)
def unavailable_reason(name: str) -> Optional[str]:
    """Why backend ``name`` cannot run here (None: it can): the ImportError naming the missing
    package, or the error of its first array (CuPy imports without a GPU, then fails)."""
    if name in cr.backends.available():
        return None
    try:
        cr.backends.get(name).asarray([0.0])
    except ImportError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 -- no driver, no GPU: any failure says "not here"
        return f"no usable device: {type(error).__name__}: {error}"
    return "not listed by chainrule.backends.available()"


@pytest.fixture(params=list(BACKEND_DEVICES), ids=list(BACKEND_DEVICES.values()))
def backend(request):
    """The device string of one backend ("cpu", "array_api_strict", "cuda"); the suite runs once
    per backend (test ids: the device strings, ``-k array_api_strict``). Optional backends (CuPy)
    skip, with the reason, where they cannot run."""
    name = request.param
    reason = unavailable_reason(name)
    if reason is not None and name in OPTIONAL_BACKENDS:
        pytest.skip(f"{name}: {reason}")
    return BACKEND_DEVICES[name]


def pytest_report_header(config):
    lines = []
    for name in BACKEND_DEVICES:
        reason = unavailable_reason(name)
        lines.append(f"  {name}: " + ("available" if reason is None else f"missing ({reason})"))
    from chainrule.ops.conv import dispatch

    compiled = ("compiled kernels (numba), tested against NumPy's" if dispatch.compiled_available()
                else "NumPy kernels only: numba is missing (pip install 'chainrule[fast]')")
    return ["chainrule backends on this run:"] + lines + [f"conv host kernels: {compiled}"]

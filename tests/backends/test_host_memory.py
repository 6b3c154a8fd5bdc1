"""The host allocator settings applied at import (backends/host_memory.py)."""

import subprocess
import sys

import pytest

from chainrule.backends import host_memory

CHECK = "import chainrule.backends.host_memory as m; print(m.tuned())"


def _glibc() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _glibc(),
                    reason="the settings are glibc's")
def test_import_applies_the_settings_and_the_variable_turns_them_off():
    assert host_memory.tuned()
    on = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         check=True, env={"CHAINRULE_MALLOC_TUNING": "0", "PATH": ""})
    assert (on.stdout.strip(), off.stdout.strip()) == ("True", "False")


def test_tuning_twice_is_harmless():
    assert host_memory.tune_allocator() == host_memory.tuned()

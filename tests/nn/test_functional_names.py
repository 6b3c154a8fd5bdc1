"""chainrule.nn.functional offers every function of chainrule.ops that torch.nn.functional has."""

import torch.nn.functional as torch_F

import chainrule.nn.functional as F
from chainrule import ops


def test_functional_reexports_every_shared_name():
    shared = {name for name in ops.__all__ if hasattr(torch_F, name)} - {"pad"}
    assert len(shared) > 50
    assert {name for name in shared if not hasattr(F, name)} == set()
    assert all(getattr(F, name) is getattr(ops, name) for name in shared)


def test_pad_is_torchs():
    """F.pad takes torch's flat widths and modes (chainrule's own cr.pad is NumPy's pad_width)."""
    assert F.pad is ops.pad_nd

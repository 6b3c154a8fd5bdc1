"""``chainrule.nn``: modules, layers, activations, losses and initialisation (PyTorch's names
and layouts)."""

# Re-exported: __all__ below is computed from dir(), which ruff cannot follow (hence F401).
from chainrule.nn import functional, init, utils  # noqa: F401
from chainrule.nn.activation import *  # noqa: F401,F403
from chainrule.nn.attention import *  # noqa: F401,F403
from chainrule.nn.layers import *  # noqa: F401,F403
from chainrule.nn.loss import *  # noqa: F401,F403
from chainrule.nn.module import (  # noqa: F401
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    RemovableHandle,
    Sequential,
)
from chainrule.nn.recurrent import *  # noqa: F401,F403
from chainrule.nn.resample import *  # noqa: F401,F403
from chainrule.nn.summary import summary  # noqa: F401

__all__ = [name for name in dir() if not name.startswith("_")]

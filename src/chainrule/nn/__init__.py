"""``chainrule.nn``: modules, layers, activations, losses and initialisation (PyTorch's names and layouts)."""

from chainrule.nn import functional, init
from chainrule.nn.activation import *  # noqa: F401,F403
from chainrule.nn.layers import *  # noqa: F401,F403
from chainrule.nn.loss import *  # noqa: F401,F403
from chainrule.nn.module import Module, ModuleList, Parameter, RemovableHandle, Sequential
from chainrule.nn.summary import summary

__all__ = [name for name in dir() if not name.startswith("_")]

"""chainrule: NumPy tensors with exact, tested, explainable reverse-mode automatic differentiation.

>>> import chainrule as cr
>>> x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
>>> cr.sigmoid(x).sum().backward()
>>> x.grad  # s(x)(1 - s(x))

The layers, from the bottom: ``backends`` (array namespaces and devices), ``engine`` (Tensor,
autograd, modes, transforms), ``ops`` (the primitives and their kernels), then ``nn``, ``optim``
and ``data``; ``training`` (fit, run folders, checkpoints, plots), ``distributed`` (MPI data
parallelism) and ``course`` (constructions, statistics, explain, the calculator) import lazily,
on first use, with what they need (safetensors, matplotlib, tqdm, scipy, mpi4py).
``import chainrule`` itself needs only NumPy.
"""

from chainrule import _compat, backends, data, nn, ops, optim
from chainrule._version import __version__
from chainrule.backends import BackendMismatchError, Device, device
from chainrule.engine.autograd import grad as autograd_grad
from chainrule.engine.errors import (
    AnomalyError,
    ChainruleError,
    GradcheckError,
    GraphFreedError,
    InplaceModifiedError,
    ShapeError,
)
from chainrule.engine.grad_mode import (
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from chainrule.engine.gradcheck import gradcheck
from chainrule.engine.tensor import Tensor, from_dlpack, tensor
from chainrule.engine.transforms import (
    elementwise_grad,
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)
from chainrule.nn.summary import summary
from chainrule.ops.abstract import ShapeDtype, eval_shape
from chainrule.ops.activations import *  # noqa: F401,F403
from chainrule.ops.attention import *  # noqa: F401,F403
from chainrule.ops.conv import *  # noqa: F401,F403
from chainrule.ops.creation import *  # noqa: F401,F403
from chainrule.ops.device import *  # noqa: F401,F403
from chainrule.ops.distance import *  # noqa: F401,F403
from chainrule.ops.elementwise import *  # noqa: F401,F403
from chainrule.ops.indexing import *  # noqa: F401,F403
from chainrule.ops.linalg import *  # noqa: F401,F403
from chainrule.ops.logic import *  # noqa: F401,F403
from chainrule.ops.losses import *  # noqa: F401,F403
from chainrule.ops.normalization import *  # noqa: F401,F403
from chainrule.ops.ordering import *  # noqa: F401,F403
from chainrule.ops.reductions import *  # noqa: F401,F403
from chainrule.ops.resample import *  # noqa: F401,F403
from chainrule.ops.scans import *  # noqa: F401,F403
from chainrule.ops.shape import *  # noqa: F401,F403
from chainrule.ops.signal import *  # noqa: F401,F403
from chainrule.ops.special import *  # noqa: F401,F403

__all__ = [
    "__version__", "Tensor", "tensor", "from_dlpack", "autograd_grad",
    "ChainruleError", "GradcheckError", "GraphFreedError", "ShapeError", "InplaceModifiedError",
    "AnomalyError", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "elementwise_grad",
    "gradcheck", "nn", "optim", "data", "summary", "backends", "device", "Device",
    "BackendMismatchError", "eval_shape", "ShapeDtype",
]  # and, imported on first use: analysis, constructions, draw_graph, explain, training,
#    distributed, course
__all__ += ops.__all__
for _internal in ("REGISTRY", "Primitive", "as_tensor"):  # ops' machinery, not the flat API
    __all__.remove(_internal)


#: Heavy or optional parts, imported on first use: ``cr.analysis``, ``cr.draw_graph`` ...
_LAZY = {
    "analysis": ("chainrule.course.analysis", None),
    "constructions": ("chainrule.course.constructions", None),
    "draw_graph": ("chainrule.course.explain", "draw_graph"),
    "explain": ("chainrule.course.explain", "explain"),
    "training": ("chainrule.training", None),
    "distributed": ("chainrule.distributed", None),
    "course": ("chainrule.course", None),
    "testing": ("chainrule.testing", None),
    "onnx": ("chainrule.onnx", None),
}


def __getattr__(name: str):  # noqa: ANN202  (PEP 562: any public name of a lazy part)
    if name not in _LAZY:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


_compat.install()

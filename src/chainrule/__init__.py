"""chainrule: NumPy tensors with exact, tested, explainable reverse-mode automatic differentiation.

>>> import chainrule as cr
>>> x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
>>> cr.sigmoid(x).sum().backward()
>>> x.grad  # s(x)(1 - s(x))
"""

from chainrule import (  # noqa: E402  # noqa: E402  (the course's networks and statistics)
    analysis,
    constructions,
    data,
    nn,  # noqa: E402  (nn, optim and data sit on top of the public API above)
    ops,
    optim,
)
from chainrule._version import __version__
from chainrule.autograd import grad as autograd_grad
from chainrule.errors import (
    AnomalyError,
    ChainruleError,
    GradcheckError,
    GraphFreedError,
    InplaceModifiedError,
    ShapeError,
)
from chainrule.explain import draw_graph, explain  # noqa: E402
from chainrule.grad_mode import (
    detect_anomaly,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from chainrule.gradcheck import gradcheck
from chainrule.nn.summary import summary
from chainrule.ops.activations import *  # noqa: F401,F403
from chainrule.ops.conv import *  # noqa: F401,F403
from chainrule.ops.creation import *  # noqa: F401,F403
from chainrule.ops.elementwise import *  # noqa: F401,F403
from chainrule.ops.linalg import *  # noqa: F401,F403
from chainrule.ops.losses import *  # noqa: F401,F403
from chainrule.ops.normalization import *  # noqa: F401,F403
from chainrule.ops.reductions import *  # noqa: F401,F403
from chainrule.ops.shape import *  # noqa: F401,F403
from chainrule.ops.signal import *  # noqa: F401,F403
from chainrule.tensor import Tensor, tensor
from chainrule.transforms import (
    elementwise_grad,
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)

__all__ = [
    "__version__", "Tensor", "tensor", "autograd_grad",
    "ChainruleError", "GradcheckError", "GraphFreedError", "ShapeError", "InplaceModifiedError",
    "AnomalyError", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "elementwise_grad",
    "gradcheck", "nn", "optim", "data", "summary", "analysis", "constructions", "draw_graph",
    "explain",
]
__all__ += ops.__all__
for _internal in ("REGISTRY", "Primitive", "as_tensor"):  # ops' machinery, not the flat API
    __all__.remove(_internal)

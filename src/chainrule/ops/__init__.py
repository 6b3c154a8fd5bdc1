"""Every operation of chainrule. Differentiable ones are :class:`Primitive` rows in their family's
module (``REGISTRY`` lists them) or composites of those; only this package calls NumPy for math.

Families: ``elementwise``, ``reductions``, ``shape``, ``linalg``, ``activations``, ``losses``,
``signal`` (convolve/correlate, kernel flipped or not), ``conv`` (convolution and pooling
layers), and ``creation`` (leaves, random numbers).
"""

from chainrule.ops import (
    activations,
    attention,
    conv,
    creation,
    device,
    distance,
    elementwise,
    indexing,
    linalg,
    logic,
    losses,
    normalization,
    ordering,
    reductions,
    resample,
    scans,
    shape,
    signal,
    special,
)
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
from chainrule.ops.primitive import REGISTRY, Primitive, as_tensor
from chainrule.ops.reductions import *  # noqa: F401,F403
from chainrule.ops.resample import *  # noqa: F401,F403
from chainrule.ops.scans import *  # noqa: F401,F403
from chainrule.ops.shape import *  # noqa: F401,F403
from chainrule.ops.signal import *  # noqa: F401,F403
from chainrule.ops.special import *  # noqa: F401,F403

__all__ = ["REGISTRY", "Primitive", "as_tensor"]
__all__ += elementwise.__all__
__all__ += reductions.__all__
__all__ += shape.__all__
__all__ += linalg.__all__
__all__ += activations.__all__
__all__ += losses.__all__
__all__ += signal.__all__
__all__ += conv.__all__
__all__ += normalization.__all__
__all__ += creation.__all__
__all__ += device.__all__
__all__ += special.__all__
__all__ += logic.__all__
__all__ += scans.__all__
__all__ += ordering.__all__
__all__ += indexing.__all__
__all__ += distance.__all__
__all__ += attention.__all__
__all__ += resample.__all__
#: the families that may list Tensor methods (``TENSOR_METHODS``)
_FAMILIES = (special, logic, scans, ordering, indexing, activations, reductions, shape, linalg,
             losses, creation, normalization, resample)


def _install_tensor_methods() -> None:
    """``x.erf()``, ``x.cumsum(axis)``, ``a & b`` ...: each family lists its Tensor methods in
    ``TENSOR_METHODS``; they are set on the class here, so Tensor stays a thin handle that
    computes nothing (and two families never edit one file)."""
    from chainrule.engine.tensor import Tensor

    for family in _FAMILIES:
        for name, method in getattr(family, "TENSOR_METHODS", {}).items():
            if name in Tensor.__dict__ and Tensor.__dict__[name] is not method:
                raise RuntimeError(f"{family.__name__}: Tensor.{name} is already defined")
            setattr(Tensor, name, method)


_install_tensor_methods()

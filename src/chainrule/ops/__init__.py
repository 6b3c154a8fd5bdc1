"""Every operation of chainrule. Differentiable ones are :class:`Primitive` rows in their family's
module (``REGISTRY`` lists them) or composites of those; only this package calls NumPy for math.

Families: ``elementwise``, ``reductions``, ``shape``, ``linalg``, ``activations``, ``losses``,
``signal`` (convolve/correlate, kernel flipped or not), ``conv`` (convolution and pooling
layers), and ``creation`` (leaves, random numbers).
"""

from chainrule.ops import (
    activations,
    conv,
    creation,
    device,
    elementwise,
    linalg,
    losses,
    normalization,
    reductions,
    shape,
    signal,
)
from chainrule.ops.activations import *  # noqa: F401,F403
from chainrule.ops.conv import *  # noqa: F401,F403
from chainrule.ops.creation import *  # noqa: F401,F403
from chainrule.ops.device import *  # noqa: F401,F403
from chainrule.ops.elementwise import *  # noqa: F401,F403
from chainrule.ops.linalg import *  # noqa: F401,F403
from chainrule.ops.losses import *  # noqa: F401,F403
from chainrule.ops.normalization import *  # noqa: F401,F403
from chainrule.ops.primitive import REGISTRY, Primitive, as_tensor
from chainrule.ops.reductions import *  # noqa: F401,F403
from chainrule.ops.shape import *  # noqa: F401,F403
from chainrule.ops.signal import *  # noqa: F401,F403

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

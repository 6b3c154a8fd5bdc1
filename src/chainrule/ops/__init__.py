"""Every operation of chainrule. Differentiable ones are :class:`Primitive` rows in their family's
module (``REGISTRY`` lists them) or composites of those; only this package calls NumPy for math.

Families: ``elementwise``, ``reductions``, ``shape``, ``linalg``, ``activations``, ``losses``,
``signal`` (convolve/correlate, kernel flipped or not), ``conv`` (convolution and pooling layers), and ``creation`` (leaves, random numbers).
"""

from chainrule.ops.primitive import REGISTRY, Primitive, as_tensor
from chainrule.ops.elementwise import *  # noqa: F401,F403
from chainrule.ops.elementwise import __all__ as _elementwise
from chainrule.ops.reductions import *  # noqa: F401,F403
from chainrule.ops.reductions import __all__ as _reductions
from chainrule.ops.shape import *  # noqa: F401,F403
from chainrule.ops.shape import __all__ as _shape
from chainrule.ops.linalg import *  # noqa: F401,F403
from chainrule.ops.linalg import __all__ as _linalg
from chainrule.ops.activations import *  # noqa: F401,F403
from chainrule.ops.activations import __all__ as _activations
from chainrule.ops.losses import *  # noqa: F401,F403
from chainrule.ops.losses import __all__ as _losses
from chainrule.ops.signal import *  # noqa: F401,F403
from chainrule.ops.signal import __all__ as _signal
from chainrule.ops.conv import *  # noqa: F401,F403
from chainrule.ops.conv import __all__ as _conv
from chainrule.ops.normalization import *  # noqa: F401,F403
from chainrule.ops.normalization import __all__ as _normalization
from chainrule.ops.creation import *  # noqa: F401,F403
from chainrule.ops.creation import __all__ as _creation

__all__ = [
    "REGISTRY", "Primitive", "as_tensor",
    *_elementwise, *_reductions, *_shape, *_linalg, *_activations, *_losses, *_signal, *_conv, *_normalization, *_creation,
]

"""chainrule's own exception types.

Each is a subclass of the built-in exception a Python user would catch anyway, so
``except ValueError`` keeps working while ``except chainrule.ShapeError`` can be precise.
"""


class ChainruleError(Exception):
    """Base class of every exception chainrule defines."""


class ShapeError(ChainruleError, ValueError):
    """Shapes that cannot work together (broadcasting, reshaping, convolution arithmetic)."""


class AxisError(ShapeError, IndexError):
    """An axis out of range: a ShapeError, and an IndexError as NumPy's AxisError and torch's."""


class GradcheckError(ChainruleError, AssertionError):
    """An analytic gradient disagrees with central finite differences."""


class GraphFreedError(ChainruleError, RuntimeError):
    """backward() through a graph whose saved tensors were already freed."""


class InplaceModifiedError(ChainruleError, RuntimeError):
    """backward() needs a tensor that an in-place operation changed after the forward saved it."""


class AnomalyError(ChainruleError, RuntimeError):
    """Under ``detect_anomaly``: an operation or VJP made NaN/inf out of finite values."""


class BackendMismatchError(ChainruleError, RuntimeError):
    """Tensors of two array backends or two devices met in one operation (cpu and cuda ...): a
    RuntimeError, as PyTorch raises for a cpu and a cuda tensor (no ValueError handler hides it)."""

"""Resampling layers with PyTorch's names: Upsample, Unfold, Fold, the padding layers.

No parameters: each module calls its function of ``chainrule.ops.resample`` (``pad_nd``,
``interpolate``, ``unfold``, ``fold``), whose docstrings give the formulas and derivatives.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import Module

__all__ = [
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "Unfold", "Fold",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
    "CircularPad1d", "CircularPad2d", "CircularPad3d",
]


class Upsample(Module):
    """``torch.nn.Upsample``: :func:`chainrule.interpolate` with the given size or scale."""

    def __init__(self, size: Union[int, Sequence[int], None] = None,
                 scale_factor: Union[float, Sequence[float], None] = None,
                 mode: str = "nearest", align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        self.size = tuple(size) if isinstance(size, (list, tuple)) else size
        self.scale_factor: Union[float, tuple, None]
        if isinstance(scale_factor, (list, tuple)):
            self.scale_factor = tuple(float(s) for s in scale_factor)
        elif scale_factor is None:
            self.scale_factor = None
        else:
            self.scale_factor = float(scale_factor)  # type: ignore[arg-type]
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return cr.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                              self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = (f"scale_factor={self.scale_factor!r}" if self.size is None
                else f"size={self.size!r}")
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d``: Upsample with mode 'nearest' (4-D input)."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d``: Upsample with mode 'bilinear' and align_corners=True."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class Unfold(Module):
    """``torch.nn.Unfold``: (N, C, H, W) -> (N, C*kh*kw, L), the sliding blocks as columns
    (:func:`chainrule.unfold`)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return cr.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """``torch.nn.Fold``: (N, C*kh*kw, L) -> (N, C, H, W), overlaps summed (:func:`chainrule.fold`,
    Unfold's adjoint)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return cr.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                       self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class _PadNd(Module):
    """Pads the last ``_dims`` axes with :func:`chainrule.pad_nd`; ``padding`` is an int (all
    sides) or torch's tuple (left, right[, top, bottom[, front, back]]). Along an axis of length
    n, output position i (-before .. n+after-1) reads: zero/constant, ``value`` outside x;
    reflection, x[n-1 - |n-1 - |i||]; replication, x[clip(i, 0, n-1)]; circular, x[i mod n].
    Gradients sum each output's cotangent onto the element it copies."""

    _dims = 2
    _mode = "constant"

    def __init__(self, padding: Union[int, Sequence[int]], value: float = 0.0) -> None:
        super().__init__()
        if isinstance(padding, int):
            widths = (int(padding),) * (2 * self._dims)
        else:
            widths = tuple(int(p) for p in padding)
            if len(widths) != 2 * self._dims:
                raise ValueError(f"{type(self).__name__}: padding={padding!r} must be an int or "
                                 f"{2 * self._dims} ints (a (before, after) pair per padded "
                                 "axis, last axis first)")
        self.padding = widths
        self.value = float(value)

    def forward(self, x: Tensor) -> Tensor:
        return cr.pad_nd(x, self.padding, self._mode, self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}" + (f", value={self.value}"
                                            if self._mode == "constant" else "")


class ZeroPad1d(_PadNd):
    """``torch.nn.ZeroPad1d``: pads the last 1 axis with zeros."""

    _dims, _mode = 1, "constant"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding, 0.0)


class ZeroPad2d(_PadNd):
    """``torch.nn.ZeroPad2d``: pads the last 2 axes with zeros."""

    _dims, _mode = 2, "constant"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding, 0.0)


class ZeroPad3d(_PadNd):
    """``torch.nn.ZeroPad3d``: pads the last 3 axes with zeros."""

    _dims, _mode = 3, "constant"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding, 0.0)


class ConstantPad1d(_PadNd):
    """``torch.nn.ConstantPad1d``: pads the last 1 axis with ``value``."""

    _dims, _mode = 1, "constant"

    def __init__(self, padding: Union[int, Sequence[int]], value: float = 0.0) -> None:
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    """``torch.nn.ConstantPad2d``: pads the last 2 axes with ``value``."""

    _dims, _mode = 2, "constant"

    def __init__(self, padding: Union[int, Sequence[int]], value: float = 0.0) -> None:
        super().__init__(padding, value)


class ConstantPad3d(_PadNd):
    """``torch.nn.ConstantPad3d``: pads the last 3 axes with ``value``."""

    _dims, _mode = 3, "constant"

    def __init__(self, padding: Union[int, Sequence[int]], value: float = 0.0) -> None:
        super().__init__(padding, value)


class ReflectionPad1d(_PadNd):
    """``torch.nn.ReflectionPad1d``: pads the last 1 axis by reflection (widths < n)."""

    _dims, _mode = 1, "reflect"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class ReflectionPad2d(_PadNd):
    """``torch.nn.ReflectionPad2d``: pads the last 2 axes by reflection (widths < n)."""

    _dims, _mode = 2, "reflect"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class ReflectionPad3d(_PadNd):
    """``torch.nn.ReflectionPad3d``: pads the last 3 axes by reflection (widths < n)."""

    _dims, _mode = 3, "reflect"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class ReplicationPad1d(_PadNd):
    """``torch.nn.ReplicationPad1d``: pads the last 1 axis with copies of the edge."""

    _dims, _mode = 1, "replicate"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class ReplicationPad2d(_PadNd):
    """``torch.nn.ReplicationPad2d``: pads the last 2 axes with copies of the edge."""

    _dims, _mode = 2, "replicate"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class ReplicationPad3d(_PadNd):
    """``torch.nn.ReplicationPad3d``: pads the last 3 axes with copies of the edge."""

    _dims, _mode = 3, "replicate"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class CircularPad1d(_PadNd):
    """``torch.nn.CircularPad1d``: pads the last 1 axis by wrapping (widths <= n)."""

    _dims, _mode = 1, "circular"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class CircularPad2d(_PadNd):
    """``torch.nn.CircularPad2d``: pads the last 2 axes by wrapping (widths <= n)."""

    _dims, _mode = 2, "circular"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class CircularPad3d(_PadNd):
    """``torch.nn.CircularPad3d``: pads the last 3 axes by wrapping (widths <= n)."""

    _dims, _mode = 3, "circular"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)

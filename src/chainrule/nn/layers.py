"""Layers with PyTorch's names, arguments, weight layouts and default initialisation.

Layers with parameters take PyTorch's ``device=`` (None: this thread's default device). Their
parameters are drawn on the host from the generator and then moved, so a seed gives the same
initial values on every device.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn import init
from chainrule.nn.module import DeviceLike, Module, Parameter, built_on_host, place
from chainrule.ops import inplace

__all__ = [
    "Identity", "Linear", "LowRankLinear", "Conv1d", "Conv2d", "ConvTranspose1d",
    "ConvTranspose2d", "Conv3d", "ConvTranspose3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool3d", "MaxUnpool2d", "AvgPool1d", "AvgPool2d",
    "AdaptiveAvgPool2d", "Flatten", "Dropout",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Residual", "Embedding", "GroupNorm",
    "InstanceNorm1d", "InstanceNorm2d", "Dropout2d", "Unflatten", "CosineSimilarity",
    "PairwiseDistance", "Bilinear",
]

Size = Union[int, Sequence[int]]


def _pair(value: Size, n: int) -> tuple:
    return (value,) * n if isinstance(value, int) else tuple(value)


def _empty(*shape: int) -> Parameter:
    return Parameter(cr.zeros(*shape).data)


def _default_init(weight: Parameter, bias: Optional[Parameter], fan_in: int) -> None:
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)),
    bias alike."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features), as ``torch.nn.Linear``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: DeviceLike = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        with built_on_host():
            self.weight = _empty(out_features, in_features)
            self.register_parameter("bias", _empty(out_features) if bias else None)
            _default_init(self.weight, self.bias, in_features)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        out = cr.matmul(x, self.weight.T)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class LowRankLinear(Module):
    """y = x (U V)^T + b with U (out, rank) and V (rank, in): (in + out) * rank weights instead
    of in * out.

    Computed as (x V^T) U^T, never forming U V. Each factor starts as PyTorch's Linear default for
    its own fan-in.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device: DeviceLike = None) -> None:
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"LowRankLinear: rank={rank} must be between 1 and min(in, out) = "
                             f"{min(in_features, out_features)}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        with built_on_host():
            self.V = _empty(rank, in_features)
            self.U = _empty(out_features, rank)
            self.register_parameter("bias", _empty(out_features) if bias else None)
            _default_init(self.V, None, in_features)
            _default_init(self.U, self.bias, in_features)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        out = cr.matmul(cr.matmul(x, self.V.T), self.U.T)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


class _ConvNd(Module):
    def __init__(
        self, n: int, in_channels: int, out_channels: int, kernel_size: Size, stride: Size, padding,
        dilation: Size, groups: int, bias: bool, transposed: bool = False,
        output_padding: Size = 0, device: DeviceLike = None,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels={in_channels} and out_channels={out_channels} must be divisible "
                f"by groups={groups}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, n)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.output_padding = output_padding
        if transposed:
            shape = (in_channels, out_channels // groups)
        else:
            shape = (out_channels, in_channels // groups)
        with built_on_host():
            self.weight = _empty(*shape, *self.kernel_size)
            self.register_parameter("bias", _empty(out_channels) if bias else None)
            fan_in = shape[1] * math.prod(self.kernel_size)
            _default_init(self.weight, self.bias, fan_in)
        place(self, device)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
            + (f", groups={self.groups}" if self.groups != 1 else "")
        )


class Conv1d(_ConvNd):
    """1-d convolution layer (cross-correlation), weight (out, in/groups, k)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1, padding=0,
        dilation: Size = 1, groups: int = 1, bias: bool = True, device: DeviceLike = None,
    ) -> None:
        super().__init__(
            1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            device=device,
        )

    def forward(self, x: Tensor) -> Tensor:
        return cr.conv1d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv2d(_ConvNd):
    """2-d convolution layer (cross-correlation), weight (out, in/groups, kH, kW), input
    (N, C, H, W)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1, padding=0,
        dilation: Size = 1, groups: int = 1, bias: bool = True, device: DeviceLike = None,
    ) -> None:
        super().__init__(
            2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            device=device,
        )

    def forward(self, x: Tensor) -> Tensor:
        return cr.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d in its input; weight (in, out/groups, kH, kW)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1,
        padding: Size = 0, output_padding: Size = 0, groups: int = 1, bias: bool = True,
        dilation: Size = 1, device: DeviceLike = None,
    ) -> None:
        super().__init__(
            2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            transposed=True, output_padding=output_padding, device=device,
        )

    def forward(self, x: Tensor) -> Tensor:
        return cr.conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
            self.groups, self.dilation,
        )


class ConvTranspose1d(_ConvNd):
    """The adjoint of Conv1d in its input; weight (in, out/groups, k), input (N, C, L)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1,
        padding: Size = 0, output_padding: Size = 0, groups: int = 1, bias: bool = True,
        dilation: Size = 1, device: DeviceLike = None,
    ) -> None:
        super().__init__(
            1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            transposed=True, output_padding=output_padding, device=device,
        )

    def forward(self, x: Tensor) -> Tensor:
        return cr.conv_transpose1d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
            self.groups, self.dilation,
        )


class Conv3d(_ConvNd):
    """3-d convolution layer, weight (out, in/groups, kD, kH, kW), input (N, C, D, H, W)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1, padding=0,
        dilation: Size = 1, groups: int = 1, bias: bool = True, device: DeviceLike = None,
    ) -> None:
        super().__init__(
            3, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            device=device,
        )

    def forward(self, x: Tensor) -> Tensor:
        return cr.conv3d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class ConvTranspose3d(_ConvNd):
    """The adjoint of Conv3d in its input; weight (in, out/groups, kD, kH, kW)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size, stride: Size = 1,
        padding: Size = 0, output_padding: Size = 0, groups: int = 1, bias: bool = True,
        dilation: Size = 1, device: DeviceLike = None,
    ) -> None:
        super().__init__(
            3, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            transposed=True, output_padding=output_padding, device=device,
        )

    def forward(self, x: Tensor) -> Tensor:
        return cr.conv_transpose3d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
            self.groups, self.dilation,
        )


class _Pool(Module):
    def __init__(
        self, fn, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0, **options
    ) -> None:
        super().__init__()
        self._fn = fn
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.options = options

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(x, self.kernel_size, self.stride, self.padding, **self.options)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
            f"padding={self.padding}"
        )


class MaxPool1d(_Pool):
    def __init__(
        self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
        dilation: Size = 1, ceil_mode: bool = False,
    ) -> None:
        super().__init__(
            cr.max_pool1d, kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode
        )


class MaxPool2d(_Pool):
    """Max over windows; the gradient goes to the first maximum of each window (PyTorch's rule).
    ``return_indices``: forward returns (values, flat indices) for ``MaxUnpool2d``."""

    def __init__(
        self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
        dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False,
    ) -> None:
        options = {"return_indices": True} if return_indices else {}
        super().__init__(
            cr.max_pool2d, kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode,
            **options,
        )


class MaxPool3d(_Pool):
    """Max over windows of (N, C, D, H, W); the gradient to each window's first maximum."""

    def __init__(
        self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
        dilation: Size = 1, ceil_mode: bool = False,
    ) -> None:
        super().__init__(
            cr.max_pool3d, kernel_size, stride, padding, dilation=dilation, ceil_mode=ceil_mode
        )


class AvgPool3d(_Pool):
    """Mean over windows of (N, C, D, H, W)."""

    def __init__(
        self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
        ceil_mode: bool = False, count_include_pad: bool = True,
    ) -> None:
        super().__init__(cr.avg_pool3d, kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class MaxUnpool2d(Module):
    """The partial inverse of ``MaxPool2d(return_indices=True)``: values back at their maxima's
    positions, zeros elsewhere (``torch.nn.MaxUnpool2d``)."""

    def __init__(self, kernel_size: Size, stride: Optional[Size] = None,
                 padding: Size = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor, indices: Tensor,
                output_size: Optional[Sequence[int]] = None) -> Tensor:
        return cr.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding,
                               output_size)


class AvgPool1d(_Pool):
    def __init__(
        self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
        ceil_mode: bool = False, count_include_pad: bool = True,
    ) -> None:
        super().__init__(cr.avg_pool1d, kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class AvgPool2d(_Pool):
    def __init__(
        self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
        ceil_mode: bool = False, count_include_pad: bool = True,
    ) -> None:
        super().__init__(cr.avg_pool2d, kernel_size, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return cr.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge axes start_dim..end_dim (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return cr.flatten(x, self.start_dim, self.end_dim)


class Dropout(Module):
    """Inverted dropout in training mode (keep with probability 1-p, scale by 1/(1-p)); identity
    in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p={p} must be in [0, 1]")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return cr.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _count_batch(norm: Module) -> None:
    """One more batch in ``num_batches_tracked`` when the running statistics take this one
    (training mode), as torch counts (it is saved, not used: momentum is always a number)."""
    if norm.training and norm.num_batches_tracked is not None:
        inplace.add_(norm.num_batches_tracked, 1)


class _BatchNorm(Module):
    _dims: tuple

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
        track_running_stats: bool = True, device: DeviceLike = None,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        with built_on_host():
            self.register_parameter("weight",
                                    Parameter(cr.ones(num_features).data) if affine else None)
            self.register_parameter("bias",
                                    Parameter(cr.zeros(num_features).data) if affine else None)
            if track_running_stats:
                self.register_buffer("running_mean", cr.zeros(num_features))
                self.register_buffer("running_var", cr.ones(num_features))
                self.register_buffer("num_batches_tracked", cr.tensor(0))  # torch's int64 count
            else:
                self.register_buffer("running_mean", None)
                self.register_buffer("running_var", None)
                self.register_buffer("num_batches_tracked", None)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected input with {self._dims} "
                f"dimensions and {self.num_features} channels on axis 1, got {x.shape}"
            )
        _count_batch(self)
        return cr.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             self.training or not self.track_running_stats, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) over the batch (and length) axes."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) over the batch and spatial axes."""

    _dims = (4,)


class LayerNorm(Module):
    """Normalisation over the trailing ``normalized_shape`` axes, with elementwise affine weight
    and bias."""

    def __init__(
        self, normalized_shape: Size, eps: float = 1e-5, elementwise_affine: bool = True,
        device: DeviceLike = None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _pair(normalized_shape, 1)  # an int n is (n,)
        self.eps = eps
        with built_on_host():
            self.register_parameter("weight", Parameter(cr.ones(*self.normalized_shape).data)
                                    if elementwise_affine else None)
            self.register_parameter("bias", Parameter(cr.zeros(*self.normalized_shape).data)
                                    if elementwise_affine else None)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        return cr.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class Residual(Module):
    """x + f(x): the skip connection of residual networks (f must keep the shape)."""

    def __init__(self, f: Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class Embedding(Module):
    """A lookup table: ``weight[indices]``, weight (num_embeddings, embedding_dim) drawn from
    N(0, 1) as torch's; the row ``padding_idx`` starts at zero and receives no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: Optional[int] = None, device: DeviceLike = None) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx={padding_idx} must be in "
                                 f"[-{num_embeddings}, {num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        with built_on_host():
            self.weight = _empty(num_embeddings, embedding_dim)
            init.normal_(self.weight)
            if padding_idx is not None:
                with cr.no_grad():
                    self.weight.data[padding_idx] = 0
        place(self, device)

    def forward(self, indices: Tensor) -> Tensor:
        return cr.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"


class GroupNorm(Module):
    """Group normalisation (``torch.nn.GroupNorm``): channels in ``num_groups`` groups, then a
    per-channel affine weight and bias."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: DeviceLike = None) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide "
                             f"num_channels={num_channels}")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        with built_on_host():
            self.register_parameter("weight",
                                    Parameter(cr.ones(num_channels).data) if affine else None)
            self.register_parameter("bias",
                                    Parameter(cr.zeros(num_channels).data) if affine else None)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        return cr.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class _InstanceNorm(Module):
    _dims: tuple

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False,
                 device: DeviceLike = None) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        with built_on_host():
            self.register_parameter("weight",
                                    Parameter(cr.ones(num_features).data) if affine else None)
            self.register_parameter("bias",
                                    Parameter(cr.zeros(num_features).data) if affine else None)
            self.register_buffer("running_mean",
                                 cr.zeros(num_features) if track_running_stats else None)
            self.register_buffer("running_var",
                                 cr.ones(num_features) if track_running_stats else None)
            self.register_buffer("num_batches_tracked",  # torch's key, never counted (as torch)
                                 cr.tensor(0) if track_running_stats else None)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): expected input with "
                             f"{self._dims[0]} dimensions and {self.num_features} channels on "
                             f"axis 1, got {x.shape}")
        use_input_stats = self.training or not self.track_running_stats
        return cr.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                use_input_stats, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) over L, per sample and channel."""

    _dims = (3,)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) over H and W, per sample and channel."""

    _dims = (4,)


class Dropout2d(Module):
    """Channel dropout (``torch.nn.Dropout2d``): whole channels zeroed with probability p in
    training mode, the others scaled by 1/(1-p); identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout2d: p={p} must be in [0, 1]")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return cr.dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size`` (``torch.nn.Unflatten``)."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        dim = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else None
        if dim is None:
            raise ValueError(f"Unflatten: dim={self.dim} is not an axis of input {x.shape}")
        shape = x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:]
        return cr.reshape(x, shape)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class CosineSimilarity(Module):
    """``cosine_similarity(x1, x2, dim, eps)`` as a module (torch's names)."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cr.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``pairwise_distance(x1, x2, p, eps, keepdim)`` as a module (torch's names)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cr.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class Bilinear(Module):
    """y_k = x1^T A_k x2 + b_k, weight A (out_features, in1_features, in2_features), as
    ``torch.nn.Bilinear`` (weights U(+-1/sqrt(in1_features)))."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device: DeviceLike = None) -> None:
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        bound = 1 / math.sqrt(in1_features)
        with built_on_host():
            self.weight = _empty(out_features, in1_features, in2_features)
            init.uniform_(self.weight, -bound, bound)
            self.register_parameter("bias", _empty(out_features) if bias else None)
            if self.bias is not None:
                init.uniform_(self.bias, -bound, bound)
        place(self, device)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        out = cr.einsum("...i,kij,...j->...k", x1, self.weight, x2)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")

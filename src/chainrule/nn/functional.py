"""``chainrule.nn.functional``: the functions behind the layers, under PyTorch's module name.

They are chainrule's own functions (NumPy argument names: ``axis``), re-exported so that code
written as ``F.conv2d(...)``, ``F.cross_entropy(...)`` reads as it would with PyTorch.
"""

from chainrule.ops import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    batch_norm,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    cross_entropy,
    dropout,
    heaviside,
    layer_norm,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    max_pool1d,
    max_pool2d,
    maxout,
    mse_loss,
    nll_loss,
    prelu,
    relu,
    sigmoid,
    sign,
    softmax,
    softplus,
    step,
    tanh,
)

"""The engine: ``Tensor`` (a thin handle on an array), the graph and backward pass (``autograd``),
per-thread modes (``grad_mode``), hooks, function transforms (``transforms``), ``gradcheck`` and
the error types. It computes nothing itself: every number comes from :mod:`chainrule.ops`."""

"""Recurrent layers with PyTorch's names, gate order, parameter names and layouts.

Cells (one time step, ``x`` of shape (N, input_size) or unbatched (input_size,)):

* ``RNNCell``:  h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)  (or relu)
* ``LSTMCell``: i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh, 4)  (torch's gate order)
  c' = sigmoid(f) c + sigmoid(i) tanh(g),   h' = sigmoid(o) tanh(c')
* ``GRUCell``:  r, z = sigmoid of the first two thirds of x W_ih^T + b_ih + h W_hh^T + b_hh,
  n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)),   h' = (1 - z) n + z h

Layers (``RNN``, ``LSTM``, ``GRU``) run a cell over a sequence (L, N, input_size) (``batch_first``:
(N, L, input_size); unbatched: (L, input_size)), stacked ``num_layers`` deep, each layer optionally
``bidirectional`` (the reverse direction reads the sequence backwards; outputs are concatenated,
forward first), with ``dropout`` on the outputs of every layer but the last (training only). They
return ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``), h_n of shape
(num_layers * directions, N, hidden_size), as torch. Parameters are named ``weight_ih_l{k}``,
``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (``_reverse`` for the backward direction), so
a torch ``state_dict`` loads as it is. Every weight starts U(-1/sqrt(hidden), 1/sqrt(hidden)).

RNN, GRU and the cells are composites of matmul, sigmoid and tanh: back-propagation through time
is the ordinary backward pass over the unrolled graph. ``LSTM`` projects every time step of a layer
in one GEMM and runs the recurrence as one primitive, ``ops.recurrent.lstm_scan``, whose backward
pass through time is one rule (the unrolled composite is its definition and its tests' reference).
"""

from __future__ import annotations

import math
from typing import Optional

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn import init
from chainrule.nn.module import DeviceLike, Module, Parameter, built_on_host, place
from chainrule.ops.recurrent import lstm_scan

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _uniform(*shape: int, bound: float) -> Parameter:
    p = Parameter(cr.zeros(*shape).data)
    init.uniform_(p, -bound, bound)
    return p


def _step(mode: str, xw: Tensor, h: Tensor, c: Optional[Tensor], w_hh: Tensor,
          b_hh: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
    """One time step from the input's projection ``xw`` = x W_ih^T + b_ih; returns (h', c')."""
    hw = cr.matmul(h, w_hh.T)
    if b_hh is not None:
        hw = hw + b_hh
    if mode == "RNN_TANH":
        return cr.tanh(xw + hw), None
    if mode == "RNN_RELU":
        return cr.relu(xw + hw), None
    if mode == "LSTM":
        i, f, g, o = cr.split(xw + hw, 4, axis=-1)
        c = cr.sigmoid(f) * c + cr.sigmoid(i) * cr.tanh(g)
        return cr.sigmoid(o) * cr.tanh(c), c
    x_r, x_z, x_n = cr.split(xw, 3, axis=-1)
    h_r, h_z, h_n = cr.split(hw, 3, axis=-1)
    r, z = cr.sigmoid(x_r + h_r), cr.sigmoid(x_z + h_z)
    n = cr.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h, None


def _project(x: Tensor, w_ih: Tensor, b_ih: Optional[Tensor]) -> Tensor:
    xw = cr.matmul(x, w_ih.T)
    return xw if b_ih is None else xw + b_ih


def _project_sequence(x: Tensor, w_ih: Tensor, b_ih: Optional[Tensor],
                      b_hh: Optional[Tensor]) -> Tensor:
    """x (L, N, I) -> x W_ih^T + b_ih + b_hh (L, N, G): every time step in one GEMM."""
    length, batch, width = x.shape
    xw = cr.matmul(cr.reshape(x, (length * batch, width)), w_ih.T)
    if b_ih is not None and b_hh is not None:
        xw = xw + (b_ih + b_hh)
    return cr.reshape(xw, (length, batch, -1))


class _CellBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: DeviceLike = None, mode: Optional[str] = None) -> None:
        super().__init__()
        if mode is not None:
            self.mode = mode
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name}={value!r} must be an int >= 1")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = GATES[self.mode] * hidden_size
        bound = 1 / math.sqrt(hidden_size)
        with built_on_host():
            self.weight_ih = _uniform(gates, input_size, bound=bound)
            self.weight_hh = _uniform(gates, hidden_size, bound=bound)
            self.register_parameter("bias_ih", _uniform(gates, bound=bound) if bias else None)
            self.register_parameter("bias_hh", _uniform(gates, bound=bound) if bias else None)
        place(self, device)

    def _state(self, x: Tensor, hx: Optional[Tensor]) -> Tensor:
        if hx is None:
            return cr.zeros(*x.shape[:-1], self.hidden_size, dtype=x.dtype)
        if hx.shape != x.shape[:-1] + (self.hidden_size,):
            raise ValueError(f"{type(self).__name__}: the state has shape {hx.shape}, expected "
                             f"{x.shape[:-1] + (self.hidden_size,)} for input {x.shape}")
        return hx

    def _check(self, x: Tensor) -> None:
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input (N, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_CellBase):
    """One step of the Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: DeviceLike = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity={nonlinearity!r}: choose 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, device,
                         mode="RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        self._check(x)
        h = self._state(x, hx)
        xw = _project(x, self.weight_ih, self.bias_ih)
        return _step(self.mode, xw, h, None, self.weight_hh, self.bias_hh)[0]


class LSTMCell(_CellBase):
    """One LSTM step (gates i, f, g, o); ``hx`` is (h, c); returns (h', c')."""

    mode = "LSTM"

    def forward(self, x: Tensor, hx: Optional[tuple] = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        h = self._state(x, None if hx is None else hx[0])
        c = self._state(x, None if hx is None else hx[1])
        xw = _project(x, self.weight_ih, self.bias_ih)
        h, c2 = _step("LSTM", xw, h, c, self.weight_hh, self.bias_hh)
        assert c2 is not None
        return h, c2


class GRUCell(_CellBase):
    """One GRU step (gates r, z, n, torch's order and its n = tanh(... + r (W_hn h + b_hn)))."""

    mode = "GRU"

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        self._check(x)
        h = self._state(x, hx)
        xw = _project(x, self.weight_ih, self.bias_ih)
        return _step("GRU", xw, h, None, self.weight_hh, self.bias_hh)[0]


class _RNNBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: DeviceLike = None, mode: Optional[str] = None) -> None:
        super().__init__()
        if mode is not None:
            self.mode = mode
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size),
                           ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be an int >= 1")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout={dropout} must be a probability in [0, 1]")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        gates = GATES[self.mode] * hidden_size
        bound = 1 / math.sqrt(hidden_size)
        with built_on_host():
            for layer in range(num_layers):
                width = input_size if layer == 0 else hidden_size * directions
                for suffix in ("", "_reverse")[:directions]:
                    tag = f"l{layer}{suffix}"
                    setattr(self, f"weight_ih_{tag}", _uniform(gates, width, bound=bound))
                    setattr(self, f"weight_hh_{tag}", _uniform(gates, hidden_size, bound=bound))
                    if bias:
                        setattr(self, f"bias_ih_{tag}", _uniform(gates, bound=bound))
                        setattr(self, f"bias_hh_{tag}", _uniform(gates, bound=bound))
        place(self, device)

    def _weights(self, tag: str) -> tuple:
        get = self._parameters.get
        return (get(f"weight_ih_{tag}"), get(f"weight_hh_{tag}"), get(f"bias_ih_{tag}"),
                get(f"bias_hh_{tag}"))

    def _initial(self, x: Tensor, hx: Optional[Tensor], unbatched: bool) -> Tensor:
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, x.shape[1], self.hidden_size)
        if hx is None:
            return cr.zeros(*shape, dtype=x.dtype)
        if unbatched:
            hx = cr.expand_dims(hx, 1)
        if hx.shape != shape:
            raise ValueError(f"{type(self).__name__}: expected an initial state of shape "
                             f"{shape[:1] + shape[2:] if unbatched else shape}, got "
                             f"{hx.shape[:1] + hx.shape[2:] if unbatched else hx.shape}")
        return hx

    def _run(self, x: Tensor, h0: Tensor, c0: Optional[Tensor]
             ) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """x: (L, N, input); h0, c0: (layers * directions, N, hidden).

        The sequence is cut into one tensor per time step once, at the input, and every layer
        works on that list: slicing a whole (L, N, 4H) projection at every step would make the
        backward pass add L full-size gradients, O(L^2) work."""
        if self.mode == "LSTM":
            return self._run_lstm(x, h0, c0)
        directions = 2 if self.bidirectional else 1
        steps = [x[t] for t in range(x.shape[0])]
        h_last, c_last = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[:directions]):
                w_ih, w_hh, b_ih, b_hh = self._weights(f"l{layer}{suffix}")
                k = layer * directions + direction
                h, c = h0[k], None if c0 is None else c0[k]
                order = range(len(steps) - 1, -1, -1) if direction else range(len(steps))
                hs: list = [None] * len(steps)
                for t in order:
                    h, c = _step(self.mode, _project(steps[t], w_ih, b_ih), h, c, w_hh, b_hh)
                    hs[t] = h
                outputs.append(hs)
                h_last.append(h)
                c_last.append(c)
            steps = outputs[0] if directions == 1 else [
                cr.concatenate([forward, backward], axis=-1)
                for forward, backward in zip(*outputs)]
            if self.dropout and self.training and layer < self.num_layers - 1:
                steps = [cr.dropout(s, self.dropout) for s in steps]
        h_n = cr.stack(h_last)
        c_n = cr.stack(c_last) if c0 is not None else None
        return cr.stack(steps), h_n, c_n

    def _run_lstm(self, x: Tensor, h0: Tensor, c0: Optional[Tensor]
                  ) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """The LSTM on ``lstm_scan``: per layer and direction one GEMM projects every time step
        (as torch does), and the recurrence is one primitive with its own backward pass."""
        assert c0 is not None
        directions = 2 if self.bidirectional else 1
        sequence, h_last, c_last = x, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[:directions]):
                w_ih, w_hh, b_ih, b_hh = self._weights(f"l{layer}{suffix}")
                k = layer * directions + direction
                xw = _project_sequence(sequence, w_ih, b_ih, b_hh)
                if direction:  # the reverse direction reads the sequence backwards
                    xw = cr.flip(xw, axis=0)
                hs, h_n, c_n = lstm_scan(xw, h0[k], c0[k], w_hh)
                outputs.append(cr.flip(hs, axis=0) if direction else hs)
                h_last.append(h_n)
                c_last.append(c_n)
            sequence = outputs[0] if directions == 1 else cr.concatenate(outputs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                sequence = cr.dropout(sequence, self.dropout)
        return sequence, cr.stack(h_last), cr.stack(c_last)

    def _layout(self, x: Tensor) -> tuple[Tensor, bool]:
        """x as (L, N, input), and whether it was unbatched."""
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input (L, N, {self.input_size}) "
                             f"(batch_first: (N, L, {self.input_size})) or unbatched "
                             f"(L, {self.input_size}), got {x.shape}")
        if x.ndim == 2:
            return cr.expand_dims(x, 1), True
        return (cr.transpose(x, (1, 0, 2)) if self.batch_first else x), False

    def _output(self, out: Tensor, unbatched: bool) -> Tensor:
        if unbatched:
            return out[:, 0]
        return cr.transpose(out, (1, 0, 2)) if self.batch_first else out

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("bias", True)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text


def _state_out(h: Tensor, unbatched: bool) -> Tensor:
    return h[:, 0] if unbatched else h


class RNN(_RNNBase):
    """Elman RNN layers (``nonlinearity`` 'tanh' or 'relu'); returns (output, h_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False,
                 device: DeviceLike = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity={nonlinearity!r}: choose 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device,
                         mode="RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._layout(x)
        out, h_n, _ = self._run(x, self._initial(x, hx, unbatched), None)
        return self._output(out, unbatched), _state_out(h_n, unbatched)


class GRU(_RNNBase):
    """GRU layers; returns (output, h_n)."""

    mode = "GRU"

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._layout(x)
        out, h_n, _ = self._run(x, self._initial(x, hx, unbatched), None)
        return self._output(out, unbatched), _state_out(h_n, unbatched)


class LSTM(_RNNBase):
    """LSTM layers; ``hx`` is (h_0, c_0); returns (output, (h_n, c_n))."""

    mode = "LSTM"

    def forward(self, x: Tensor, hx: Optional[tuple] = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x, unbatched = self._layout(x)
        h0 = self._initial(x, None if hx is None else hx[0], unbatched)
        c0 = self._initial(x, None if hx is None else hx[1], unbatched)
        out, h_n, c_n = self._run(x, h0, c0)
        assert c_n is not None
        return self._output(out, unbatched), (_state_out(h_n, unbatched),
                                              _state_out(c_n, unbatched))


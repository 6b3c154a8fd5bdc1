"""Op-info rows of the recurrent primitives (see ``opinfo.py`` for what a row holds).

``lstm_scan`` is checked as its primitive: the whole (L, 7, N, H) output (h, c, tanh(c) and the
four gates of every step), against the recurrence written out in NumPy below. Its first
derivatives come from the joint rule (``lstm_scan_backward``), its second derivatives from the
unrolled definition, so finite differences check both.
"""

from __future__ import annotations

import numpy as np

from chainrule.ops.recurrent import lstm_scan_p
from chainrule.testing.opinfo import OpInfo, cases


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_lstm(xw, h0, c0, w_hh):
    """The LSTM recurrence on ndarrays, torch's gate order; per step [h, c, tanh c, i, f, g, o]."""
    hidden, h, c, steps = w_hh.shape[1], h0, c0, []
    for x_t in xw:
        pre = x_t + h @ w_hh.T
        i, f, o = (_np_sigmoid(pre[:, k * hidden:(k + 1) * hidden]) for k in (0, 1, 3))
        g = np.tanh(pre[:, 2 * hidden:3 * hidden])
        c = f * c + i * g
        h = o * np.tanh(c)
        steps.append(np.stack([h, c, np.tanh(c), i, f, g, o]))
    return np.stack(steps)


def _shapes(length, batch, hidden):
    return ((length, batch, 4 * hidden), (batch, hidden), (batch, hidden), (4 * hidden, hidden))


# fmt: off
ROWS: list[OpInfo] = [
    OpInfo("lstm_scan", lambda xw, h0, c0, w: lstm_scan_p.bind(xw, h0, c0, w),
           cases(_shapes(3, 2, 2), _shapes(1, 1, 3)), _np_lstm,
           covers=("lstm_scan", "lstm_scan_backward")),
]
# fmt: on

"""Op-info rows of issue 12's resampling ops (see ``opinfo.py`` for what a row holds).

pad_nd and unfold/fold have independent NumPy references (``np.pad``'s modes, explicit loops);
interpolate's reference is torch (its source-index formulas are the specification). Every op is
linear in x (order 2 checks that the second derivatives vanish consistently); nearest is a fixed
gather, so it is linear in x too.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.testing.opinfo import OpInfo, cases, fixed

_GATHER = ("getitem", "transpose")
_WEIGHTED = ("getitem", "transpose", "mul", "add")


def _np_pad(x, pad, mode):
    widths = [(0, 0)] * x.ndim
    for j in range(len(pad) // 2):
        widths[x.ndim - 1 - j] = (pad[2 * j], pad[2 * j + 1])
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}[mode]
    return np.pad(x, widths, mode=np_mode)


def _np_unfold(x, k, d, p, s):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c, k[0], k[1], oh, ow))
    for i in range(k[0]):
        for j in range(k[1]):
            out[:, :, i, j] = xp[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0],
                                 j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]]
    return out.reshape(n, c * k[0] * k[1], oh * ow)


def _np_fold(y, size, k, d, p, s):
    n, ckk, _ = y.shape
    c = ckk // (k[0] * k[1])
    h, w = size
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    blocks = y.reshape(n, c, k[0], k[1], oh, ow)
    out = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]))
    for i in range(k[0]):
        for j in range(k[1]):
            out[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0],
                j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]] += blocks[:, :, i, j]
    return out[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


_UNFOLD = dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))
_UNFOLD_NP = ((2, 3), (1, 2), (1, 1), (2, 1))


def _pad_row(name, pad, mode, shapes):
    return OpInfo(name, lambda x: cr.pad_nd(x, pad, mode), cases(*shapes),
                  lambda x: _np_pad(x, pad, mode),
                  lambda t, x: t.nn.functional.pad(x, pad, mode=mode), covers=_GATHER)


def _interp_row(name, kwargs, shapes, covers=_WEIGHTED):
    return OpInfo(name, lambda x: cr.interpolate(x, **kwargs), cases(*shapes), None,
                  lambda t, x: t.nn.functional.interpolate(x, **kwargs), covers=covers)


# fmt: off
ROWS: list[OpInfo] = [
    OpInfo("pad_nd_constant", lambda x: cr.pad_nd(x, (1, 2, 0, 1), value=0.5),
           cases(((2, 3),), ((1, 2, 3, 2),)),
           lambda x: np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, 1), (1, 2)], constant_values=0.5),
           lambda t, x: t.nn.functional.pad(x, (1, 2, 0, 1), value=0.5), covers=("pad",)),
    OpInfo("pad_nd_crop", lambda x: cr.pad_nd(x, (-1, 2, 1, -1)), fixed((2, 3, 4)), None,
           lambda t, x: t.nn.functional.pad(x, (-1, 2, 1, -1)), covers=("pad", "getitem")),
    _pad_row("pad_nd_reflect", (2, 1, 1, 2), "reflect", (((1, 2, 3, 4),), ((2, 3, 4),))),
    _pad_row("pad_nd_replicate", (1, 3), "replicate", (((2, 3, 4),), ((2, 3),))),
    _pad_row("pad_nd_circular", (2, 1, 0, 3), "circular", (((1, 2, 3, 4),),)),
    _pad_row("pad_nd_reflect_3d", (1, 1, 2, 0, 0, 1), "reflect", (((1, 1, 2, 3, 3),),)),
    _interp_row("interpolate_nearest", dict(size=(5, 3)), (((1, 2, 3, 4),),), _GATHER),
    _interp_row("interpolate_nearest_scale", dict(scale_factor=1.5), (((2, 1, 3),),), _GATHER),
    _interp_row("interpolate_nearest_exact", dict(size=(2, 7), mode="nearest-exact"),
                (((1, 2, 3, 4),),), _GATHER),
    _interp_row("interpolate_linear", dict(size=7, mode="linear"), (((2, 2, 4),),)),
    _interp_row("interpolate_linear_down", dict(scale_factor=0.6, mode="linear"),
                (((1, 2, 6),),)),
    _interp_row("interpolate_bilinear", dict(size=(5, 3), mode="bilinear"), (((1, 2, 3, 4),),)),
    _interp_row("interpolate_bilinear_corners",
                dict(scale_factor=(1.5, 2.0), mode="bilinear", align_corners=True),
                (((1, 1, 3, 2),),)),
    _interp_row("interpolate_trilinear", dict(size=(3, 2, 4), mode="trilinear"),
                (((1, 1, 2, 3, 2),),)),
    _interp_row("interpolate_bicubic", dict(size=(5, 3), mode="bicubic"), (((1, 2, 3, 4),),)),
    _interp_row("interpolate_bicubic_corners", dict(size=(4, 5), mode="bicubic",
                                                    align_corners=True), (((1, 1, 3, 3),),)),
    OpInfo("unfold", lambda x: cr.unfold(x, **_UNFOLD), cases(((2, 2, 4, 5),)),
           lambda x: _np_unfold(x, *_UNFOLD_NP),
           lambda t, x: t.nn.functional.unfold(x, **_UNFOLD), covers=("pad",) + _GATHER),
    OpInfo("unfold_unbatched", lambda x: cr.unfold(x, 2), cases(((2, 3, 3),)),
           lambda x: _np_unfold(x[None], (2, 2), (1, 1), (0, 0), (1, 1))[0],
           lambda t, x: t.nn.functional.unfold(x, 2), covers=_GATHER),
    OpInfo("fold", lambda y: cr.fold(y, (4, 5), **_UNFOLD), cases(((2, 12, 9),)),
           lambda y: _np_fold(y, (4, 5), *_UNFOLD_NP),
           lambda t, y: t.nn.functional.fold(y, (4, 5), **_UNFOLD),
           covers=("index_add", "transpose", "getitem")),
    OpInfo("fold_unbatched", lambda y: cr.fold(y, (3, 3), 2), cases(((8, 4),)),
           lambda y: _np_fold(y[None], (3, 3), (2, 2), (1, 1), (0, 0), (1, 1))[0],
           lambda t, y: t.nn.functional.fold(y, (3, 3), 2), covers=("index_add", "transpose")),
]
# fmt: on

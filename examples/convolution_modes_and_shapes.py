"""Convolution modes and CNN shape arithmetic (seeds 000, 001).

True convolution flips the kernel: (x * k)[n] = sum_m x[m] k[n - m]. Deep-learning layers compute
cross-correlation (no flip). Output size of a layer: floor((i + 2p - d(k - 1) - 1) / s) + 1.
"""

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.course import shapes

x, k = [1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 2.0]
assert cr.convolve(x, k, mode="full").tolist() == [1, 2, 5, 8, 6, 8]
assert cr.convolve(x, k, mode="valid").tolist() == [5, 8]
assert cr.convolve(x, k, mode="same").tolist() == [2, 5, 8, 6]
# no flip: 1*1 + 2*0 + 3*2, 2*1 + 3*0 + 4*2
assert cr.correlate(x, k, mode="valid").tolist() == [7, 10]

# seed 001, question 3c: a moving average with [1/4, 1/4, 1/4]
signal, box = [1, 1, 4, 4, 4, 1, 1], [0.25, 0.25, 0.25]
assert np.allclose(cr.convolve(signal, box, mode="valid").numpy(), [3 / 2, 9 / 4, 3, 9 / 4, 3 / 2])
assert np.allclose(cr.convolve(signal, box, mode="full").numpy(),
                   [1 / 4, 1 / 2, 3 / 2, 9 / 4, 3, 9 / 4, 3 / 2, 1 / 2, 1 / 4])

# a CNN's shapes, by the formula and by running it
rows = shapes.plan((3, 256, 256), ["conv:64,k=8,s=2", "maxpool:k=5", "conv:128,k=4,p=1"])
assert rows[-1].shape == (128, 24, 24) and rows[-1].weights == 131_072
model = nn.Sequential(nn.Conv2d(3, 64, 8, stride=2), nn.MaxPool2d(5),
                      nn.Conv2d(64, 128, 4, padding=1))
assert cr.summary(model, (3, 256, 256)).rows[-1].output_shape == (128, 24, 24)
# choosing k, s, p, d: 64 -> 32 with an 8x8 kernel
assert (8, 2, 3, 1) in [tuple(p) for p in shapes.solve(64, 32, kernel_size=8, dilation=1)]

print("full", cr.convolve(x, k).tolist(), "valid", cr.convolve(x, k, "valid").tolist(),
      "same", cr.convolve(x, k, "same").tolist())
print("3x256x256 -> conv 64 k8 s2 -> maxpool 5 -> conv 128 k4 p1:",
      "x".join(map(str, rows[-1].shape)))

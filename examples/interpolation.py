"""Exact interpolation of N points with N-1 hidden units (seed 000).

One shared direction w with distinct projections, hidden biases that make the matrix of hidden
outputs triangular, then a triangular solve for the output layer: the network passes through
every (x_i, y_i). Here N = 500 random points in R^10 with 3 outputs, for ReLU and sigmoid units.
"""

import numpy as np

import chainrule as cr
from chainrule.course.constructions import interpolating_network

rng = np.random.default_rng(0)
X, Y = rng.standard_normal((500, 10)), rng.standard_normal((500, 3))
for activation in ("relu", "sigmoid"):
    net = interpolating_network(X, Y, activation=activation)
    error = float(np.abs(net(cr.tensor(X)).numpy() - Y).max())
    assert error <= 1e-8, (activation, error)
    hidden = net[0].weight.shape[0]
    print(f"{activation:>7}: {hidden} hidden units, max |f(x_i) - y_i| = {error:.1e}")

"""XOR: impossible for a linear model, exact for a two-unit ReLU network
(seed 003; Goodfellow et al. 6.1).

The best linear least-squares fit of XOR is the constant 1/2 (residual 1 on the four points);
f(x) = w^T relu(W^T x + c) + b with W = [[1,1],[1,1]], c = [0,-1], w = [1,-2], b = 0 is exact.
"""

import numpy as np

import chainrule as cr
from chainrule.course.constructions import best_linear_fit, single_unit_separable, xor_network
from chainrule.data import xor

X, y = xor()
fit = best_linear_fit(X, y.astype("float64"))
assert np.allclose(np.asarray(fit.weights), 0)
assert abs(float(fit.bias) - 0.5) < 1e-12 and abs(fit.residual - 1) < 1e-12
assert not single_unit_separable(X, 2 * y.numpy() - 1)  # no single threshold unit either
out = xor_network()(cr.tensor(X.numpy(), dtype="float64")).numpy().ravel()
assert out.tolist() == [0.0, 1.0, 1.0, 0.0]
print("linear fit: w =", np.asarray(fit.weights).ravel().tolist(), "b =", float(fit.bias),
      "residual =", fit.residual)
print("ReLU network on (0,0), (0,1), (1,0), (1,1):", out.tolist())

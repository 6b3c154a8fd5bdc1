"""Back-propagation through a residual MLP with loss S + R (seed 002, problem 4).

z = W1 x + b1, h = sigmoid(z), y = x + W2 h + b2, S = ||y - s||^2 / 2, R = r^T h, L = S + R.
Hand-derived equations (reverse order):  y_bar = y - s;  h_bar = r + W2^T y_bar;
z_bar = h_bar * sigmoid'(z);  x_bar = W1^T z_bar + y_bar  (the skip connection adds y_bar).
(The course document writes x_bar = dL/dx = 1 at the start: that is L_bar = 1, not x_bar.)
"""

import numpy as np

import chainrule as cr

rng = np.random.default_rng(1)
n, k = 4, 3
W1, b1, W2, b2 = (rng.standard_normal((k, n)), rng.standard_normal(k),
                  rng.standard_normal((n, k)), rng.standard_normal(n))
s_vec, r_vec, x0 = rng.standard_normal(n), rng.standard_normal(k), rng.standard_normal(n)


def loss(x):
    z = cr.tensor(W1) @ x + b1
    h = cr.sigmoid(z)
    y = x + cr.tensor(W2) @ h + b2
    return 0.5 * cr.sum((y - s_vec) ** 2) + cr.sum(r_vec * h)


autodiff = cr.grad(loss)(x0).numpy()

z = W1 @ x0 + b1
h = 1 / (1 + np.exp(-z))
y = x0 + W2 @ h + b2
y_bar = y - s_vec
h_bar = r_vec + W2.T @ y_bar
z_bar = h_bar * h * (1 - h)
x_bar = W1.T @ z_bar + y_bar

assert np.allclose(autodiff, x_bar, rtol=1e-12, atol=1e-12)
assert cr.gradcheck(loss, (x0,))
print("x_bar by hand:   ", np.round(x_bar, 6))
print("x_bar by autodiff:", np.round(autodiff, 6))

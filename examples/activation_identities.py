"""Activation identities of the course, computed with chainrule (seeds 000, 001, 003).

softplus(x) - softplus(-x) = x;  log sigmoid(x) = -softplus(-x);  softplus' = sigmoid;
tanh(x) = 2 sigmoid(2x) - 1;  relu(x) = x H(x);  sign(x) = H(x) - H(-x) with sign(0) = 0;
sigmoid(kx) -> H(x) as k grows (x != 0), and stays 1/2 at x = 0.
"""

import numpy as np

import chainrule as cr

x = cr.tensor(np.linspace(-6, 6, 25), dtype="float64")

assert np.allclose((cr.softplus(x) - cr.softplus(-x)).numpy(), x.numpy())
assert np.allclose(cr.log_sigmoid(x).numpy(), (-cr.softplus(-x)).numpy())
assert np.allclose(cr.grad(lambda t: cr.sum(cr.softplus(t)))(x).numpy(), cr.sigmoid(x).numpy())
assert np.allclose(cr.tanh(x).numpy(), (2 * cr.sigmoid(2 * x) - 1).numpy())
assert np.array_equal(cr.relu(x).numpy(), (x * cr.heaviside(x, 0.0)).numpy())
assert np.array_equal(cr.sign(x).numpy(), (cr.heaviside(x, 0.5) - cr.heaviside(-x, 0.5)).numpy())

away = cr.tensor([-1.0, -0.1, 0.1, 1.0], dtype="float64")
errors = [float(cr.max(cr.abs(cr.sigmoid(away * k) - cr.heaviside(away))).item())
          for k in (1, 10, 100, 1000)]
assert all(a > b for a, b in zip(errors, errors[1:])) and errors[-1] < 1e-40
assert cr.sigmoid(cr.tensor(0.0) * 1e6).item() == 0.5 == cr.heaviside(cr.tensor(0.0)).item()

print("softplus, log-sigmoid, tanh, relu and sign identities hold on", x.size, "points")
print("max |sigmoid(kx) - H(x)| for |x| >= 0.1, k = 1, 10, 100, 1000:",
      ", ".join(f"{e:.1e}" for e in errors))

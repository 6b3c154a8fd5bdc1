"""The softmax Jacobian diag(S) - S S^T and its O(n) vector-Jacobian product (seeds 000, 001).

Back-propagation never builds the n x n Jacobian: softmax's VJP is S * (g - sum(g * S)), O(n).
Softmax is invariant to adding a constant, and a 2-class softmax is a sigmoid of the difference.
"""

import numpy as np

import chainrule as cr

x = np.array([1.0, 2.0, 0.5, -1.0])
s = cr.softmax(cr.tensor(x)).numpy()
jacobian = cr.jacobian(cr.softmax)(x).numpy()
assert np.allclose(jacobian, np.diag(s) - np.outer(s, s))

g = np.array([0.3, -1.0, 2.0, 0.5])
_, pullback = cr.vjp(cr.softmax, x)
(vjp,) = pullback(g)
assert np.allclose(vjp.numpy(), g @ jacobian)  # the O(n) rule gives the row vector g^T J
assert np.allclose(vjp.numpy(), s * (g - np.sum(g * s)))

assert np.allclose(cr.softmax(cr.tensor(x + 100.0)).numpy(), s)  # softmax(x + c) = softmax(x)
assert np.allclose(cr.softmax(cr.tensor(x - x[0])).numpy(), s)  # = softmax([0, x2 - x1, ...])
two = cr.softmax(cr.tensor([3.0, 1.0], dtype="float64")).numpy()
assert np.allclose(two, [cr.sigmoid(cr.tensor(2.0, dtype="float64")).item(),
                         1 - cr.sigmoid(cr.tensor(2.0)).item()])

print("softmax", np.round(s, 4))
print("Jacobian diag(S) - S S^T:\n", np.round(jacobian, 4))
print("g^T J by the O(n) rule:", np.round(vjp.numpy(), 4))

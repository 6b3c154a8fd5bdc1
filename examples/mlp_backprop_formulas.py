"""The manual back-propagation formulas of a one-hidden-layer MLP against autodiff (seed 001).

h^a = W1 x + b1, h^s = relu(h^a), o^a = W2 h^s + b2, o^s = softmax(o^a), L = -log o^s_y.
grad_oa = o^s - onehot(y);  grad_W2 = grad_oa h^s^T;  grad_b2 = grad_oa;  grad_hs = W2^T grad_oa;
grad_ha = grad_hs * relu'(h^a) = grad_hs * H(h^a);  grad_W1 = grad_ha x^T;  grad_b1 = grad_ha.
(The document writes grad_ha = grad_hs * sigma(h^a); the factor is the derivative of the hidden
activation, H(h^a) for ReLU, sigma(h^a)(1 - sigma(h^a)) for a sigmoid -- never sigma(h^a) itself.)
Plus the L2-regularised gradient step theta <- theta - eta (grad + 2 lambda theta) = SGD with
weight_decay = 2 lambda.
"""

import numpy as np

import chainrule as cr
from chainrule import optim

rng = np.random.default_rng(2)
d, dh, m, label = 5, 4, 3, 2
x = rng.standard_normal(d)
params = {"W1": rng.standard_normal((dh, d)), "b1": rng.standard_normal(dh),
          "W2": rng.standard_normal((m, dh)), "b2": rng.standard_normal(m)}
tensors = {name: cr.tensor(value, requires_grad=True) for name, value in params.items()}

ha = tensors["W1"] @ x + tensors["b1"]
hs = cr.relu(ha)
oa = tensors["W2"] @ hs + tensors["b2"]
loss = cr.cross_entropy(cr.reshape(oa, (1, m)), np.array([label]))
loss.backward()

os_ = np.exp(oa.numpy() - oa.numpy().max())
os_ /= os_.sum()
grad_oa = os_ - np.eye(m)[label]
grad_W2 = np.outer(grad_oa, hs.numpy())
grad_hs = params["W2"].T @ grad_oa
grad_ha = grad_hs * (ha.numpy() > 0)
grad_W1 = np.outer(grad_ha, x)
for name, by_hand in (("W2", grad_W2), ("b2", grad_oa), ("W1", grad_W1), ("b1", grad_ha)):
    assert np.allclose(tensors[name].grad.numpy(), by_hand, rtol=1e-12, atol=1e-12), name

# one L2-regularised step: theta - eta (grad + 2 lambda theta) == SGD(weight_decay = 2 lambda)
eta, lam = 0.1, 0.01
expected = params["W2"] - eta * (grad_W2 + 2 * lam * params["W2"])
optim.SGD([tensors["W2"]], lr=eta, weight_decay=2 * lam).step()
assert np.allclose(tensors["W2"].numpy(), expected)
print("grad_W2 = grad_oa h^s^T, grad_W1 = (W2^T grad_oa * H(h^a)) x^T: equal to autodiff")

r"""The computational graph of L = max(sigmoid(W[0] @ x), sigmoid(W[1] @ x)) (seed 004).

W = [[1, 2], [-2, 3]], x = [2, -3]: z = W x = [1*2 + 2*(-3), -2*2 + 3*(-3)] = [-4, -13].
sigmoid(-4) = 0.017986 > sigmoid(-13) = 2.3e-6, so the first branch wins and only it gets gradient:
dL/dz = [s'(-4), 0] with s'(-4) = s(1 - s) = 0.017663; dL/dW = dL/dz x^T = [[2 s', -3 s'], [0, 0]];
dL/dx = W^T dL/dz = [s', 2 s']. (Compute these numbers: the course document's arithmetic slips.)
Try it from the shell:

    chainrule graph "max(sigmoid(W[0] @ x), sigmoid(W[1] @ x))" \
        --let "W=[[1,2],[-2,3]]" --let "x=[2,-3]"
"""

import math

import numpy as np

import chainrule as cr

W = cr.tensor([[1.0, 2.0], [-2.0, 3.0]], dtype="float64", requires_grad=True)
x = cr.tensor([2.0, -3.0], dtype="float64", requires_grad=True)
L = cr.maximum(cr.sigmoid(W[0] @ x), cr.sigmoid(W[1] @ x))
L.backward()

s = 1 / (1 + math.exp(4.0))
ds = s * (1 - s)
assert math.isclose(L.item(), s, rel_tol=1e-15)
assert np.allclose(W.grad.numpy(), [[2 * ds, -3 * ds], [0.0, 0.0]], rtol=1e-14)
assert np.allclose(x.grad.numpy(), [ds, 2 * ds], rtol=1e-14)
assert cr.gradcheck(lambda W, x: cr.maximum(cr.sigmoid(W[0] @ x), cr.sigmoid(W[1] @ x)),
                    (W.numpy(), x.numpy()))
print(f"L = {L.item():.6f}; dL/dW = {np.round(W.grad.numpy(), 6).tolist()}; "
      f"dL/dx = {np.round(x.grad.numpy(), 6).tolist()}")

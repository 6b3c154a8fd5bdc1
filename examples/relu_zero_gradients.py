"""Which ReLU weight gradients are guaranteed to be zero? (seed 002, problem 3)

Network: z1 = w1 x -> h1 = relu(z1); h1 feeds z3 = w2 h1 + w6 h2 and z4 = w4 h1 + w7 h2 (h2 from a
second input unit); h3 = relu(z3), h4 = relu(z4); z = w3 h3 + w5 h4; y = relu(z); L = (y - t)^2 / 2.
On a case where z1 = -1 (so h1 = 0): dL/dw1 = 0 (relu'(z1) = 0) and dL/dw2 = 0 (it multiplies
h1 = 0) are guaranteed; dL/dw3 is not (it multiplies h3, which need not be 0).
"""

import numpy as np

import chainrule as cr

rng = np.random.default_rng(0)
nonzero_w3 = 0
for _ in range(200):
    w = {name: cr.tensor(rng.standard_normal(), dtype="float64", requires_grad=True)
         for name in ("w1", "w2", "w3", "w4", "w5", "w6", "w7")}
    x = -1.0 / w["w1"].item()  # so that z1 = w1 x = -1
    h2 = cr.tensor(abs(rng.standard_normal()), dtype="float64")
    h1 = cr.relu(w["w1"] * x)
    h3 = cr.relu(w["w2"] * h1 + w["w6"] * h2)
    h4 = cr.relu(w["w4"] * h1 + w["w7"] * h2)
    y = cr.relu(w["w3"] * h3 + w["w5"] * h4)
    loss = (y - rng.standard_normal()) ** 2 / 2
    loss.backward()
    assert h1.item() == 0.0
    assert w["w1"].grad.item() == 0.0 and w["w2"].grad.item() == 0.0  # guaranteed, on every draw
    nonzero_w3 += w["w3"].grad.item() != 0.0

assert 0 < nonzero_w3 < 200  # dL/dw3: sometimes zero, often not -- not guaranteed
print(f"dL/dw1 = dL/dw2 = 0 on all 200 random networks; dL/dw3 != 0 on {nonzero_w3} of them")

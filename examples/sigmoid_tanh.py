"""A sigmoid network and a tanh network compute the same functions (seeds 000, 002).

sigmoid(a) = (1 + tanh(a/2)) / 2, so Linear(w1, b1) -> sigmoid -> Linear(w2, b2) equals
Linear(w1/2, b1/2) -> tanh -> Linear(w2/2, b2 + rowsum(w2)/2), and back.
"""

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.course.constructions import sigmoid_to_tanh, tanh_to_sigmoid

cr.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 5), nn.Sigmoid(), nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 2))
for p in net.parameters():
    p.data = p.data.astype(np.float64)
x = cr.tensor(np.random.default_rng(1).standard_normal((10, 3)))
as_tanh = sigmoid_to_tanh(net)
back = tanh_to_sigmoid(as_tanh)
gap = float(np.abs(net(x).numpy() - as_tanh(x).numpy()).max())
round_trip = float(np.abs(net(x).numpy() - back(x).numpy()).max())
assert gap <= 1e-12 and round_trip <= 1e-12
assert any(isinstance(m, nn.Tanh) for m in as_tanh)
assert not any(isinstance(m, nn.Sigmoid) for m in as_tanh)
print(f"sigmoid net vs its tanh twin: max difference {gap:.1e}; round trip {round_trip:.1e}")

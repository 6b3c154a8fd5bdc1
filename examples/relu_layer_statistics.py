"""A random Gaussian ReLU layer (seed 004): for W with N(0, 1) entries and a fixed x,
about m/2 units are active, (W x)_i ~ N(0, ||x||^2), and E relu((W x)_i) = ||x|| / sqrt(2 pi).
"""

import numpy as np

from chainrule.course.analysis import relu_layer_statistics

x = np.array([1.0, -2.0, 0.5, 3.0])
stats = relu_layer_statistics(x, m=100, trials=500, seed=0)
print(stats)
for stat in stats:
    assert stat.theory_in_ci, stat
    assert abs(stat.empirical - stat.theory) <= 0.05 * stat.theory

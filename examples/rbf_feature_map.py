"""The RBF kernel's feature map (seed 003): exp(-g||x - y||^2) = <psi(x), psi(y)> with the
infinite Taylor feature map psi; truncated at degree D it converges to the kernel as D grows.
"""

import numpy as np

from chainrule.course.analysis import rbf_feature_map, rbf_kernel

rng = np.random.default_rng(0)
for d in (1, 3):
    X = rng.uniform(-1, 1, (5, d))
    K = rbf_kernel(X, X, gamma=0.5).numpy()
    errors = []
    for degree in (1, 3, 6, 10, 15):
        psi = rbf_feature_map(X, degree, gamma=0.5).numpy()
        errors.append(float(np.abs(psi @ psi.T - K).max()))
    assert all(a > b for a, b in zip(errors, errors[1:])) and errors[-1] < 1e-8
    print(f"d = {d}: max |<psi(x), psi(y)> - K(x, y)| at degree 1, 3, 6, 10, 15:",
          ", ".join(f"{e:.1e}" for e in errors))

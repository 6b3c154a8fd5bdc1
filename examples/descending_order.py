"""A threshold network that outputs 1 exactly when x1 > x2 > ... > xn (seed 002, problem 1).

Hidden unit i is step(x_{i+1} - x_i) (1 when the pair is NOT strictly descending, ties included);
the output is step(1/2 - sum of hidden units). Checked on every tuple of small integers.
"""

import itertools

import numpy as np

import chainrule as cr
from chainrule.course.constructions import descending_order_network

net = descending_order_network(5)
inputs = np.array(list(itertools.product(range(5), repeat=5)), dtype=np.float64)
out = net(cr.tensor(inputs)).numpy().ravel()
expected = np.array([all(a > b for a, b in zip(row, row[1:])) for row in inputs], dtype=np.float64)
assert np.array_equal(out, expected)
print(f"descending-order net: correct on all {len(inputs)} tuples in {{0..4}}^5 "
      f"({int(expected.sum())} strictly descending, ties give 0)")

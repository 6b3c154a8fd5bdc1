"""Four points solved by sign units, impossible for one unit (seed 004).

(-2,0), (2,0) -> +1 and (0,2), (0,-2) -> -1: no line separates them (a linear program finds no
w, b with y_i (w.x_i + b) >= 1), but two sign units and an output unit do.
"""

import chainrule as cr
from chainrule.course.constructions import FOUR_POINTS, four_point_network, single_unit_separable

X, y = FOUR_POINTS
assert not single_unit_separable(X, y)
out = four_point_network()(cr.tensor(X, dtype="float64")).numpy().ravel()
assert out.tolist() == y
print("one unit separable:", single_unit_separable(X, y), "| sign network outputs:", out.tolist())

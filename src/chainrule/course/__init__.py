"""The course tools: ``constructions`` (hand-built networks), ``analysis`` (statistics of random
layers), ``explain`` (the backward pass number by number, ``draw_graph``), ``calculator`` (the
safe expression evaluator of ``chainrule graph``) and ``shapes`` (the layer planner).

Imported on first use (``cr.analysis``, ``cr.explain`` ...).
"""

"""Optimizers and learning-rate schedules, with ``torch.optim``'s names, defaults and formats.

Typical use::

    from chainrule import optim

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2 * lam)
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        sched.step()

Every update runs outside the graph through :mod:`chainrule.ops.inplace` (parameters keep
their arrays); each class's docstring gives its update rule. Differences from PyTorch: no
``foreach``/``fused``/``capturable``/``differentiable`` options, ``state['step']`` is a Python
int (not a 0-d tensor), ``state_dict()`` returns copies (a snapshot), and ``load_state_dict``
refuses state for unknown parameter indices or buffers of the wrong shape.
"""

from chainrule.optim import lr_scheduler
from chainrule.optim.adadelta import Adadelta
from chainrule.optim.adagrad import Adagrad
from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.adamax import Adamax
from chainrule.optim.lbfgs import LBFGS
from chainrule.optim.nadam import NAdam
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.radam import RAdam
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
           "NAdam", "RAdam", "LBFGS", "lr_scheduler"]

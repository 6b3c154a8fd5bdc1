"""Loss modules: thin wrappers holding the options of chainrule's loss functions (PyTorch names)."""

from __future__ import annotations

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import Module

__all__ = [
    "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "L1Loss",
    "SmoothL1Loss", "HuberLoss", "KLDivLoss", "MarginRankingLoss", "CosineEmbeddingLoss",
    "TripletMarginLoss", "PoissonNLLLoss",
]


class MSELoss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.mse_loss(input, target, self.reduction)


class BCELoss(Module):
    def __init__(self, weight=None, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.reduction = weight, reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None) -> None:
        super().__init__()
        self.weight, self.reduction, self.pos_weight = weight, reduction, pos_weight

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits (N, C, ...) or (C,) against class indices or class
    probabilities, with class weights, ``ignore_index`` and label smoothing
    (:func:`chainrule.cross_entropy`)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities (N, C, ...) or (C,) at class indices, with
    class weights and ``ignore_index`` (:func:`chainrule.nll_loss`)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class L1Loss(Module):
    """Mean absolute error (:func:`chainrule.l1_loss`)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.l1_loss(input, target, self.reduction)


class SmoothL1Loss(Module):
    """Quadratic below ``beta``, linear above (:func:`chainrule.smooth_l1_loss`)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__()
        self.reduction, self.beta = reduction, beta

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(Module):
    """Quadratic below ``delta``, delta-sloped linear above (:func:`chainrule.huber_loss`)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__()
        self.reduction, self.delta = reduction, delta

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.huber_loss(input, target, self.reduction, self.delta)


class KLDivLoss(Module):
    """KL divergence of log-probabilities ``input`` from ``target`` (:func:`chainrule.kl_div`);
    ``reduction='batchmean'`` is the true divergence per sample."""

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__()
        self.reduction, self.log_target = reduction, log_target

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.kl_div(input, target, self.reduction, self.log_target)


class MarginRankingLoss(Module):
    """max(0, -y (x1 - x2) + margin) (:func:`chainrule.margin_ranking_loss`)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, input1: Tensor, input2: Tensor, target) -> Tensor:
        return cr.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


class CosineEmbeddingLoss(Module):
    """1 - cos for similar pairs, max(0, cos - margin) for dissimilar ones
    (:func:`chainrule.cosine_embedding_loss`)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, input1: Tensor, input2: Tensor, target) -> Tensor:
        return cr.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class TripletMarginLoss(Module):
    """max(0, margin + d(a, p) - d(a, n)) with p-norm distances
    (:func:`chainrule.triplet_margin_loss`)."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, reduction: str = "mean") -> None:
        super().__init__()
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap
        self.reduction = reduction

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return cr.triplet_margin_loss(anchor, positive, negative, self.margin, self.p,
                                      self.eps, self.swap, self.reduction)


class PoissonNLLLoss(Module):
    """Poisson negative log-likelihood of counts (:func:`chainrule.poisson_nll_loss`)."""

    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.log_input, self.full, self.eps, self.reduction = log_input, full, eps, reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return cr.poisson_nll_loss(input, target, self.log_input, self.full, self.eps,
                                   self.reduction)

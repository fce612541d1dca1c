"""Training losses behind a registry: ``get_loss("disj")`` → an ``nn.Module``.

One module per loss (:mod:`.infonce`, :mod:`.joint`, :mod:`.disj`, :mod:`.lsep`), all sharing
the input contract of :mod:`.base`: a score matrix ``[Q, D]`` and a label-weight matrix ``[Q, D]``.
The distillation losses (:mod:`.kl`, :mod:`.margin_mse`, :mod:`.disj_kl`) also take teacher
scores (:class:`.base.TeacherScores`) and have ``needs_teacher = True``; the trainer builds those
from ``TrainConfig.teacher`` (or the groups' teacher scores) and passes them.
"""

from __future__ import annotations

import inspect

from ...errors import UnknownNameError
from .base import GroupLoss, TeacherScores, valid_rows
from .disj import DisjLoss
from .disj_kl import DisjKLLoss
from .infonce import InfoNCELoss
from .joint import JointLoss
from .kl import KLDistillLoss
from .lsep import LSEPLoss
from .margin_mse import MarginMSELoss

LOSSES: dict[str, type[GroupLoss]] = {}


def register_loss(cls: type[GroupLoss]) -> type[GroupLoss]:
    """Register a :class:`GroupLoss` subclass under its ``name``."""
    LOSSES[cls.name] = cls
    return cls


for _cls in (InfoNCELoss, JointLoss, DisjLoss, LSEPLoss, KLDistillLoss, MarginMSELoss, DisjKLLoss):
    register_loss(_cls)


def loss_names() -> list[str]:
    return sorted(LOSSES)


def get_loss(name: str, **options) -> GroupLoss:
    """Instantiate the loss registered as ``name`` (unknown names list the valid ones) with those of
    ``options`` its constructor takes (a config passes all its loss options; each loss picks its own)."""
    if name not in LOSSES:
        raise UnknownNameError("loss", name, list(LOSSES))
    cls = LOSSES[name]
    takes = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return cls(**{k: v for k, v in options.items() if k in takes})


def teacher_loss_names() -> list[str]:
    """Losses that need teacher scores (``needs_teacher``)."""
    return sorted(n for n, cls in LOSSES.items() if cls.needs_teacher)


__all__ = ["GroupLoss", "LOSSES", "TeacherScores", "get_loss", "loss_names", "register_loss", "teacher_loss_names",
           "valid_rows"]

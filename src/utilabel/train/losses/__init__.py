"""Training losses behind a registry: ``get_loss("disj")`` → an ``nn.Module``.

One module per loss (:mod:`.infonce`, :mod:`.joint`, :mod:`.disj`, :mod:`.lsep`), all sharing
the input contract of :mod:`.base`: a score matrix ``[Q, D]`` and a label-weight matrix ``[Q, D]``.
"""

from __future__ import annotations

from ...errors import UnknownNameError
from .base import GroupLoss, valid_rows
from .disj import DisjLoss
from .infonce import InfoNCELoss
from .joint import JointLoss
from .lsep import LSEPLoss

LOSSES: dict[str, type[GroupLoss]] = {}


def register_loss(cls: type[GroupLoss]) -> type[GroupLoss]:
    """Register a :class:`GroupLoss` subclass under its ``name``."""
    LOSSES[cls.name] = cls
    return cls


for _cls in (InfoNCELoss, JointLoss, DisjLoss, LSEPLoss):
    register_loss(_cls)


def loss_names() -> list[str]:
    return sorted(LOSSES)


def get_loss(name: str, **options) -> GroupLoss:
    """Instantiate the loss registered as ``name`` (unknown names list the valid ones)."""
    if name not in LOSSES:
        raise UnknownNameError("loss", name, list(LOSSES))
    return LOSSES[name](**options)


__all__ = ["GroupLoss", "LOSSES", "get_loss", "loss_names", "register_loss", "valid_rows"]

"""What a connection plugin implements: the curve family joining two models."""

from __future__ import annotations

import torch

from mcbench.kinds.base import Plugin


class ConnectionPlugin(Plugin):
    """A family of curves w(t) = sum_k c_k(t) w_k through bends w_0 .. w_{K-1}, with
    w(0) = w_0 and w(1) = w_{K-1} the fixed endpoints; interior bends are trained."""

    kind = "connection"

    @property
    def num_bends(self) -> int:
        raise NotImplementedError

    def coefficients(self, t: torch.Tensor) -> torch.Tensor:
        """The K coefficients at scalar ``t`` in [0, 1], as a float tensor ``[K]``."""
        raise NotImplementedError

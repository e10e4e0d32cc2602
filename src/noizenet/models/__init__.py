"""Model families behind one interface (see :mod:`noizenet.models.base` for the contract).

``flat`` is the paper's RNN | LSTM | GRU stack -> dropout -> head.
"""

from __future__ import annotations

from noizenet.models.flat import (
    ModelSpec,
    NoizeNet,
    OutputDropout,
    State,
    detach_state,
    reset_streams,
)

__all__ = ["ModelSpec", "NoizeNet", "OutputDropout", "State", "detach_state", "reset_streams"]

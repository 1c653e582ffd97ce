"""The engine's configuration (a frozen value) and the run context built from it."""

from __future__ import annotations

from dataclasses import dataclass

from .comm import Channel
from .fixed import DEFAULT_FRAC_BITS, FixedPoint
from .prg import Randomness


@dataclass(frozen=True)
class EngineConfig:
    """Everything that changes what the engine computes.

    ``seed``: None draws keys from the OS; an integer replays a run exactly.
    ``frac_bits``: fixed-point fractional bits (see docs/fixed-point.md).
    """

    frac_bits: int = DEFAULT_FRAC_BITS
    seed: int | None = None


class Context:
    """One three-server run: its randomness, its channel and its number format."""

    def __init__(self, config: EngineConfig = EngineConfig()):
        self.config = config
        self.fixed = FixedPoint(config.frac_bits)
        self.rand = Randomness(config.seed)
        self.chan = Channel()

    def __repr__(self) -> str:
        return f"Context({self.config})"

"""The secure engine: 3-server replicated secret sharing over Z_2^64.

Modules in dependency order::

    ring (uint64, exact limb matmul)  ->  fixed (the only place that scales)
    ->  prg (AES-128 counter-mode streams)  ->  comm (the one cross-party path)
    ->  context (config value, run context)  ->  protocols (roles, arith,
    trunc, boolean, compare)  ->  costs (declared costs)  ->  tensor (SharedTensor)
"""

from .memory import tune_allocator

tune_allocator()

from .comm import CLIENT, MODEL_OWNER, Channel, Cost  # noqa: E402
from .context import Context, EngineConfig  # noqa: E402
from .fixed import FixedPoint  # noqa: E402
from .tensor import SharedTensor  # noqa: E402

__all__ = ["CLIENT", "MODEL_OWNER", "Channel", "Context", "Cost", "EngineConfig", "FixedPoint", "SharedTensor"]

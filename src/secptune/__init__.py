"""secptune: privacy-preserving prompt tuning with 3-party replicated secret sharing.

Subpackages, in dependency order:

- ``secptune.engine``: ring Z_2^64, fixed point, AES counter-mode randomness, the channel,
  protocols over replicated shares, ``SharedTensor``.
- ``secptune.nn``: encoder layers on float arrays and on shares.
- ``secptune.weights``: Hugging Face checkpoints.
- ``secptune.tuning``: tasks, data, the client/server tuning loop.
"""

__version__ = "0.1.0"

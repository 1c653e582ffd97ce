"""Declared communication costs of the protocols, checked against the channel by tests.

Bytes are per element (per output element for matmul) sent by each server
(S0, S1, S2), for element counts divisible by 24, where the rotation of
asymmetric roles and the packing of sub-byte messages divide evenly.  The
client's bytes are listed where it sends.  Derivations are in the docstrings
of the protocols named.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeclaredCost:
    rounds: int
    server_bytes: tuple          # per element, per server
    client_bytes: float = 0.0    # per element
    where: str = ""

    @property
    def max_server_bytes(self) -> float:
        return max(self.server_bytes)


def _even(b: float) -> tuple:
    return (b, b, b)


# first level of the MSB circuit, rotated: role 0 sends 3 words of 4 B and one
# packed bit to each of two servers; roles 1 and 2 send 8 B.
_MSB_SHARE = (2 * (12 + 1 / 8) + 8 + 8) / 3
# tree levels: 32, 16, 8, 4 and 1 bits per element
_MSB_TREE = (32 + 16 + 8 + 4 + 1) / 8
# bit_to_arith, rotated: role 0 sends 8 B to two servers, roles 1 and 2 8 B
_B2A = (16 + 8 + 8) / 3
_MSB = _MSB_SHARE + _MSB_TREE + _B2A
# full bit decomposition: first round as _B2A, five Kogge-Stone levels of two
# 64-bit ANDs, a last level of one
_A2B = (16 + 8 + 8) / 3 + 5 * 16 + 8

DECLARED = {
    "reveal": DeclaredCost(1, _even(8), where="protocols.arith.reveal"),
    "reveal_client": DeclaredCost(1, _even(8), where="protocols.arith.reveal(to=CLIENT)"),
    "share_client": DeclaredCost(1, _even(0), client_bytes=48, where="protocols.arith.share_from_client"),
    "share_server0": DeclaredCost(1, (16, 0, 0), where="protocols.arith.share_from_server"),
    "mul_int": DeclaredCost(1, _even(8), where="protocols.arith.mul_ss"),
    "matmul_int": DeclaredCost(1, _even(8), where="protocols.arith.matmul_ss"),
    "trunc": DeclaredCost(2, _even(16), where="protocols.trunc.trunc"),
    "mul": DeclaredCost(2, _even(64 / 3), where="protocols.trunc.mul_trunc"),
    "matmul_ss": DeclaredCost(2, _even(64 / 3), where="tensor.matmul (secret @ secret)"),
    "matmul_sp": DeclaredCost(2, _even(16), where="tensor.matmul (secret @ public)"),
    "msb_bool": DeclaredCost(6, _even(_MSB_SHARE + _MSB_TREE), where="protocols.boolean.msb_bool"),
    "b2a": DeclaredCost(1, _even(_B2A), where="protocols.boolean.bit_to_arith"),
    "a2b": DeclaredCost(7, _even(_A2B), where="protocols.boolean.a2b"),
    "lt": DeclaredCost(7, _even(_MSB), where="protocols.compare.lt"),
    "relu": DeclaredCost(8, _even(_MSB + 8), where="protocols.compare.relu"),
    "abs": DeclaredCost(8, _even(_MSB + 8), where="protocols.compare.abs_"),
    "select": DeclaredCost(1, _even(8), where="protocols.compare.select"),
}
"""``max`` over n columns costs ceil(log2 n) levels of lt + select per row."""

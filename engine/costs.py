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
# the same on 32-bit words: 2-byte words in the first level, tree levels of 16,
# 8, 4 and 1 bits
_MSB_SHARE32 = (2 * (6 + 1 / 8) + 4 + 4) / 3
_MSB_TREE32 = (16 + 8 + 4 + 1) / 8
_MSB32 = _MSB_SHARE32 + _MSB_TREE32 + _B2A
# on 16-bit words (``compare.coarse``): 1-byte words in the first level, tree levels
# of 8, 4 and 1 bits
_MSB_SHARE16 = (2 * (3 + 1 / 8) + 2 + 2) / 3
_MSB_TREE16 = (8 + 4 + 1) / 8
_MSB16 = _MSB_SHARE16 + _MSB_TREE16 + _B2A
# full bit decomposition: first round as _B2A, five Kogge-Stone levels of two
# 64-bit ANDs, a last level of one
_A2B = (16 + 8 + 8) / 3 + 5 * 16 + 8

_MUL = 64 / 3            # fused multiply-truncate, rotated
_TRUNC = 16.0
_INT_MUL = 8.0
_RELU = _MSB + 8
_RELU32 = _MSB32 + 8
_RELU16 = _MSB16 + 8
# highest set bit of a value below 2^32: 32-bit adder (first round rotated: 4 B
# to two servers from role 0, 4 B from each other role; four levels of two
# 32-bit ANDs, one of one), five prefix-OR levels of one 32-bit AND, and the
# position's bits to arithmetic (all five, or four).
_HBIT_BOOL = (8 + 4 + 4) / 3 + 4 * 8 + 4 + 5 * 4
_HBIT = _HBIT_BOOL + 5 * _B2A
# exp: clamp (coarse comparison, bit to arithmetic, integer product), polynomial
# u^2 | u^3 | u^3 H + L (three products), three squarings
_EXP = _RELU16 + 3 * _MUL + 3 * _MUL
_EXP_ROUNDS = 6 + 6 + 6
# reciprocal: position, integer products (3, 1, 1), the mantissa (one fused product),
# polynomial (three products), final rescaling product
_RECIP = _HBIT + 5 * _INT_MUL + _MUL + 3 * _MUL + _MUL
# rsqrt: position (bits 1-4), integer products (2, 1, 1), the mantissa, polynomial (four
# products), final rescaling product
_RSQRT = _HBIT_BOOL + 4 * _B2A + 4 * _INT_MUL + _MUL + 4 * _MUL + _MUL
# comparison-free GELU: t = x^2 / 8 - 1, polynomial in t (four products)
_GELU_POLY = _MUL + 4 * _MUL
# GELU: two comparisons batched (MSB of 2 values), two bits to arithmetic, the
# comparison-free polynomial, the two selections as one sum of products (one resharing)
_GELU_REST = 2 * _B2A + _GELU_POLY + _INT_MUL
_GELU = 2 * (_MSB_SHARE + _MSB_TREE) + _GELU_REST
_GELU_COARSE = 2 * (_MSB_SHARE16 + _MSB_TREE16) + _GELU_REST
# masked cosine: role 2 sends two 4-byte masked angles and 16 B of dealt halves,
# then the truncation (role 2 helper, 16 B each); rotated
_COS = (4 + 4 + 16 + 16 + 16 + 16) / 3
_COS_SIN = (4 + 4 + 16 + 32 + 32 + 32) / 3

DECLARED = {
    "reveal": DeclaredCost(1, _even(8), where="protocols.arith.reveal"),
    "reveal_client": DeclaredCost(1, _even(8), where="protocols.arith.reveal(to=CLIENT)"),
    "share_client": DeclaredCost(1, _even(0), client_bytes=48, where="protocols.arith.share_from_client"),
    "share_server0": DeclaredCost(1, (16, 0, 0), where="protocols.arith.share_from_server"),
    "mul_int": DeclaredCost(1, _even(8), where="protocols.arith.mul_ss"),
    "mul_sum": DeclaredCost(1, _even(8), where="protocols.arith.mul_sum (any number of terms)"),
    "matmul_int": DeclaredCost(1, _even(8), where="protocols.arith.matmul_ss"),
    "trunc": DeclaredCost(2, _even(16), where="protocols.trunc.trunc"),
    "mul": DeclaredCost(2, _even(64 / 3), where="protocols.trunc.mul_trunc"),
    "matmul_ss": DeclaredCost(2, _even(64 / 3), where="tensor.matmul (secret @ secret)"),
    "matmul_sp": DeclaredCost(2, _even(16), where="tensor.matmul (secret @ public)"),
    "msb_bool": DeclaredCost(6, _even(_MSB_SHARE + _MSB_TREE), where="protocols.boolean.msb_bool"),
    "msb_bool32": DeclaredCost(5, _even(_MSB_SHARE32 + _MSB_TREE32), where="protocols.boolean.msb_bool (width 32)"),
    "msb_bool16": DeclaredCost(4, _even(_MSB_SHARE16 + _MSB_TREE16), where="protocols.boolean.msb_bool (width 16)"),
    "b2a": DeclaredCost(1, _even(_B2A), where="protocols.boolean.bit_to_arith"),
    "a2b": DeclaredCost(7, _even(_A2B), where="protocols.boolean.a2b"),
    "hbit": DeclaredCost(12, _even(_HBIT), where="protocols.boolean.highest_bit_position (all five bits)"),
    "lt": DeclaredCost(7, _even(_MSB), where="protocols.compare.lt"),
    "lt32": DeclaredCost(6, _even(_MSB32), where="protocols.compare.lt (width 32)"),
    "relu": DeclaredCost(8, _even(_MSB + 8), where="protocols.compare.relu"),
    "relu32": DeclaredCost(7, _even(_RELU32), where="protocols.compare.relu (width 32)"),
    "relu_coarse": DeclaredCost(6, _even(_RELU16), where="protocols.compare.relu (coarse)"),
    "abs": DeclaredCost(8, _even(_MSB + 8), where="protocols.compare.abs_"),
    "select": DeclaredCost(1, _even(8), where="protocols.compare.select"),
    "exp": DeclaredCost(_EXP_ROUNDS, _even(_EXP), where="approx.elementary.exp"),
    "reciprocal": DeclaredCost(25, _even(_RECIP), where="approx.elementary.reciprocal"),
    "rsqrt": DeclaredCost(25, _even(_RSQRT), where="approx.elementary.rsqrt"),
    "gelu": DeclaredCost(16, _even(_GELU), where="approx.activations.gelu"),
    "gelu_coarse": DeclaredCost(14, _even(_GELU_COARSE), where="approx.activations.gelu (coarse)"),
    "gelu_poly": DeclaredCost(8, _even(_GELU_POLY), where="approx.activations.gelu_poly"),
    "cos": DeclaredCost(3, _even(_COS), where="approx.trig.cos_sin (cos only)"),
    "cos_sin": DeclaredCost(3, _even(_COS_SIN), where="approx.trig.cos_sin (both)"),
}


def softmax_cost(n: int) -> DeclaredCost:
    """Softmax over rows of n (a power of two): per element of the input.

    max: n - 1 coarse ReLUs of differences per row in log2 n levels; exp per
    element; one reciprocal per row; one product per element.
    """
    levels = max(0, (n - 1).bit_length())
    b = (n - 1) / n * (_MSB16 + 8) + _EXP + _RECIP / n + _MUL
    return DeclaredCost(6 * levels + _EXP_ROUNDS + DECLARED["reciprocal"].rounds + 2, _even(b),
                        where="approx.activations.softmax")


def layernorm_cost(d: int, gamma: bool = False) -> DeclaredCost:
    """LayerNorm over rows of d, per element: the row statistics amortised over d."""
    per_row = _TRUNC + _MUL + _TRUNC + _RSQRT
    b = _MUL + (_TRUNC if gamma else 0.0) + per_row / d
    return DeclaredCost(2 + 2 + 2 + 25 + 2 + (2 if gamma else 0), _even(b), where="approx.activations.layernorm")
"""``max`` over n columns costs ceil(log2 n) levels of a ReLU (comparison and product) per row."""

"""Encoder layers as functions of (params, x).

The same code runs on float arrays (the plaintext reference) and on
``SharedTensor`` (the secure forward): layers call ``nn.ops``, which
dispatches on the operand type.  Modules, in dependency order: ``ops`` ->
``attention``.
"""

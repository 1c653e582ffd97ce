"""Encoder layers as functions of (params, x); not written yet (see the encoder issue)."""

"""Hugging Face checkpoints -> parameter trees (``checkpoint``) and the packaged default model (``default``)."""

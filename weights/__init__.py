"""Hugging Face checkpoint loading; not written yet (see the encoder issue)."""

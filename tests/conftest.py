import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from secptune.engine import Context, EngineConfig

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def ctx():
    return Context(EngineConfig(seed=1234))


@pytest.fixture
def rng():
    return np.random.default_rng(7)

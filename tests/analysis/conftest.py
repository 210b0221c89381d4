"""Fixtures of the analysis tests: one synthetic sweep shared by the session."""

from __future__ import annotations

import pandas as pd
import pytest
from _synthetic import synth_frames


@pytest.fixture(scope="session")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synth_frames()

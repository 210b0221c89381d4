"""The one agreement rule (richness.analysis.agreement) and the widths verdicts are fitted on."""

from __future__ import annotations

import doctest
import math

import pytest

import richness.analysis.agreement as agreement_module
from richness.analysis.agreement import agreement, asymptotic_widths

NAN = math.nan


@pytest.mark.parametrize(
    ("slope", "low", "high", "expected"),
    [
        (0.25, 0.20, 0.30, "agrees"),  # the whole interval inside 0.25 ± 0.1
        (0.25, 0.15, 0.35, "agrees"),  # the band's edges count as inside
        (0.26, 0.05, 0.47, "undetermined"),  # the slope inside, the interval too wide
        (0.40, 0.10, 0.60, "undetermined"),  # the slope outside, the interval covers 0.25
        (0.40, 0.30, 0.50, "undetermined"),  # the slope outside, the interval straddles 0.35
        (0.60, 0.50, 0.70, "disagrees"),  # the whole interval beyond the band
        (-0.2, -0.3, -0.1, "disagrees"),
        (0.25, NAN, NAN, "undetermined"),  # no interval (one seed): no verdict either way
        (1.00, NAN, NAN, "undetermined"),
        (NAN, 0.2, 0.3, "undetermined"),  # no fit
    ],
)
def test_the_rule(slope, low, high, expected):
    assert agreement(slope, low, high, 0.25, 0.1) == expected


def test_two_seeds_that_disagree_do_not_agree_with_what_lies_between():
    """Seeds at slopes 0 and 0.5: the target-inside-the-interval rule would pass 0.25."""
    assert agreement(0.25, 0.0, 0.5, 0.25, 0.1) == "undetermined"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tolerance": -0.1}, "tolerance"),
        ({"predicted": NAN}, "predicted"),
        ({"ci_low": 0.3, "ci_high": 0.2}, "ci_low"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    args = {"slope": 0.25, "ci_low": 0.2, "ci_high": 0.3, "predicted": 0.25, "tolerance": 0.1}
    with pytest.raises(ValueError, match=field):
        agreement(**{**args, **kwargs})


def test_the_asymptotic_widths_are_the_upper_half():
    assert asymptotic_widths([64, 128, 256, 512, 1024]) == [128, 256, 512, 1024]
    assert asymptotic_widths([256, 32, 64, 128]) == [64, 128, 256]
    assert asymptotic_widths([32, 64, 128]) == [32, 64, 128]


def test_examples():
    assert doctest.testmod(agreement_module).failed == 0

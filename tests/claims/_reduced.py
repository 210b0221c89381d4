"""What the reduced ("quick") form of a claim must show (tests/claims)."""

from __future__ import annotations

import json

SLOPE_CLAIMS = {"C1", "C2", "C3", "C4", "C5", "C6", "C7"}  # judged row by row


def assert_reduced_form_holds(result):
    """Its own checks pass (C11: on the smooth network, its ReLU verdict reported beside);
    for a slope claim: no row disagrees, every slope is within its
    tolerance of the prediction, its negative control (if any) fails with a disagreeing row,
    and the claim passes exactly when every row agrees."""
    table = result.to_json()["table"]
    by_activation = result.details.get("verdict_by_activation")
    if by_activation is not None:  # C11: judged per activation, passes iff every one does
        assert by_activation["tanh"] == "pass", result.details["checks_by_activation"]
        every = all(v == "pass" for v in by_activation.values())
        assert result.verdict == ("pass" if every else "fail")
        return
    if result.claim not in SLOPE_CLAIMS:
        assert result.verdict == "pass", json.dumps(table, indent=1)[:3000]
        return
    assert table
    assert not [row for row in table if row["agreement"] == "disagrees"], table
    assert all(abs(row["slope"] - row["predicted"]) <= row["tolerance"] for row in table)
    agree = all(row["agreement"] == "agrees" for row in table)
    control = result.details.get("negative_control")
    if control is not None and control.get("required", True):  # it must fail, and does
        assert control["fails_as_required"], control
    off_scale = result.details.get("off_scale_controls")
    if off_scale is not None:  # C1: the required off-scale table must fail, and does
        assert off_scale["required"]["fails_as_required"], off_scale["required"]
    assert result.verdict == ("pass" if agree else "fail")

"""The coordinate check tells SP from μP on a user's own factory."""

import torch

import richness as rn
from richness.coordcheck import coord_check


def make(width):
    return torch.nn.Sequential(
        torch.nn.Linear(12, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 2),
    )


def _slope(fits, quantity, layer):
    row = fits[(fits.quantity == quantity) & (fits.layer == layer)]
    return float(row.slope.iloc[0]), float(row.predicted.iloc[0])


def test_sp_as_given_fails_ntc_and_mup_passes():
    widths = [64, 128, 256, 512]
    _, _, sp = coord_check(make, widths, steps=2, lr=0.05, seeds=range(2))
    df_sp, _ = _slope(sp, "df", "")
    assert df_sp > 0.4  # SP at a fixed LR: ‖Δf‖ grows with width (C9)
    _, _, mup = coord_check(
        make, widths, p=rn.preset("mup", base_width=64), steps=2, lr=0.05, seeds=range(2)
    )
    dh, predicted = _slope(mup, "dh", "2")
    assert predicted == 0.5 and abs(dh - 0.5) < 0.1
    df_mup, predicted_df = _slope(mup, "df", "")
    assert predicted_df == 0.0 and abs(df_mup) < 0.15

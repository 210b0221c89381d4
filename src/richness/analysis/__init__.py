"""Floor 3: exponent fits with seed-bootstrap intervals, verdicts, figures, HTML report.

Measures THEORY.md §4 (C1–C8) on the tables a sweep stores (or `run_frames` builds), and judges
§2's criteria by the one agreement rule (`richness.analysis.agreement`). Imports
numpy, pandas, matplotlib (Agg canvas, no pyplot) and `richness.scaling`; never torch.

Example:
  >>> from richness.analysis import write_report
  >>> write_report("runs.sqlite", "report/")  # doctest: +SKIP
  PosixPath('report/index.html')
"""

from richness.analysis._frames import load_frames as load_frames
from richness.analysis._frames import plain_identity as plain_identity
from richness.analysis._frames import run_frames as run_frames
from richness.analysis.fits import CRITERIA as CRITERIA
from richness.analysis.fits import criteria_verdicts as criteria_verdicts
from richness.analysis.fits import fit_exponents as fit_exponents
from richness.analysis.fits import local_slopes as local_slopes
from richness.analysis.plots import plot_coord_check as plot_coord_check
from richness.analysis.plots import plot_phase_diagram as plot_phase_diagram
from richness.analysis.plots import plot_richness_scale as plot_richness_scale
from richness.analysis.report import write_report as write_report

__all__ = [
    "CRITERIA",
    "criteria_verdicts",
    "fit_exponents",
    "load_frames",
    "local_slopes",
    "plain_identity",
    "plot_coord_check",
    "plot_phase_diagram",
    "plot_richness_scale",
    "run_frames",
    "write_report",
]

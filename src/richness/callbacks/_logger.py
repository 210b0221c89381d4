"""`MetricLogger`: the Meter's numbers (or any scalars) to CSV and TensorBoard in a custom loop.

    with MetricLogger("runs/mup") as log:          # runs/mup/metrics.csv, + TensorBoard events
        for step in range(steps):
            train_step(model)
            log.log(step, meter.measure())          # {"dh/layers.1": ..., "df": ...}

The CSV is tidy (long): one row per (step, key), columns `step,key,value`. A wide file (one
column per key) must be rewritten whenever a key appears later than the header (a layer measured
from step 100 on, a "weights" metric asked for every 50 steps): tidy rows only append, so a run
that crashes keeps every row written and a resumed run appends to the same file. Read it wide
with `pandas.read_csv(path).pivot(index="step", columns="key", values="value")`.
"""

from __future__ import annotations

import csv
import importlib.util
import numbers
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = ["CSV_HEADER", "MetricLogger"]

CSV_HEADER = ("step", "key", "value")


class MetricLogger:
    """Writes scalars per step to `log_dir/metrics.csv` and, when installed, to TensorBoard.

    Args:
      log_dir: a directory (created if missing) for `metrics.csv` and TensorBoard's event files.
        An existing `metrics.csv` with the same header is appended to (a resumed run).
      tensorboard: True: also write through `torch.utils.tensorboard.SummaryWriter.add_scalar`
        (needs the `tensorboard` package); False: CSV only; "auto" (default): TensorBoard when
        the package is installed.

    Raises:
      ValueError: `tensorboard` is not True, False or "auto"; an existing `metrics.csv` is not
        a file of this logger (its first line is not `step,key,value`).
      ImportError: tensorboard=True and the `tensorboard` package is not installed.

    Example:
      >>> import tempfile
      >>> with tempfile.TemporaryDirectory() as d, MetricLogger(d, tensorboard=False) as log:
      ...     log.log(0, {"df": 0.0, "dh/layers.1": 0.5})
      ...     print(log.csv_path.read_text().splitlines())
      ['step,key,value', '0,df,0.0', '0,dh/layers.1,0.5']
    """

    def __init__(self, log_dir: str | Path, tensorboard: bool | Literal["auto"] = "auto"):
        if tensorboard not in (True, False, "auto"):
            raise ValueError(f"tensorboard={tensorboard!r} is not one of True, False, 'auto'")
        installed = importlib.util.find_spec("tensorboard") is not None
        if tensorboard is True and not installed:
            raise ImportError(
                "MetricLogger(tensorboard=True) needs the tensorboard package: "
                "pip install tensorboard (or richness[tensorboard]); "
                "tensorboard='auto' writes the CSV alone when it is missing"
            )
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.log_dir / "metrics.csv"
        resumed = self.csv_path.exists() and self.csv_path.stat().st_size > 0
        if resumed:
            with self.csv_path.open(newline="") as f:
                first = next(csv.reader(f), [])
            if tuple(first) != CSV_HEADER:
                raise ValueError(
                    f"{self.csv_path} exists and is not a MetricLogger file: its first line is\n"
                    f"  {','.join(first)}\nexpected\n  {','.join(CSV_HEADER)}\n"
                    "choose another log_dir"
                )
        self._file = self.csv_path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if not resumed:
            self._csv.writerow(CSV_HEADER)
        self._writer = None
        if tensorboard is True or (tensorboard == "auto" and installed):
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self.closed = False

    @property
    def tensorboard(self) -> bool:
        """Whether TensorBoard event files are written too."""
        return self._writer is not None

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Appends one row per key at `step`, and one TensorBoard scalar per key.

        Args:
          step: the training step, an int ≥ 0 (TensorBoard's `global_step`).
          metrics: {key: value}, e.g. `meter.measure()`; each value a real number or a
            one-element tensor (read with `.item()`, a device sync). NaN and ±inf are written
            as `nan`, `inf`, `-inf` (pandas reads them back).

        Raises:
          ValueError: the logger is closed, or step is not an int ≥ 0.
          TypeError: a value is not a number.

        The CSV is flushed after each call, so the file is complete whenever it is read.
        """
        if self.closed:
            raise ValueError(f"MetricLogger({str(self.log_dir)!r}) is closed")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r} must be an int >= 0")
        rows = [(step, str(key), _number(key, value)) for key, value in metrics.items()]
        self._csv.writerows(rows)
        self._file.flush()
        if self._writer is not None:
            for _, key, number in rows:
                self._writer.add_scalar(key, number, global_step=step)

    def close(self) -> None:
        """Closes the CSV file and the TensorBoard writer (flushing both); safe to call twice."""
        if self.closed:
            return
        self._file.close()
        if self._writer is not None:
            self._writer.close()
        self.closed = True

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _number(key: str, value: object) -> float:
    """`value` as a float: a real number, or a one-element tensor (`.item()`)."""
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:
        return float(value.item())
    raise TypeError(
        f"metrics[{key!r}] is a {type(value).__name__}, not a number or a one-element tensor"
    )

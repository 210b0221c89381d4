"""Where the peer libraries' environments are (mup, neural-tangents), on any checkout.

From the repository root, ``bash ../shared/peers/setup.sh ../peers`` builds
``../peers/mup/bin/python`` and ``../peers/nt/bin/python``. A benchmark looks in, first found:
its ``--peers DIR`` flag, the ``RICHNESS_PEERS`` environment variable, then ``../peers`` beside
the repository (resolved from this file, so the working directory does not matter).
"""

from __future__ import annotations

import os
from pathlib import Path

SETUP = "bash ../shared/peers/setup.sh ../peers  (from the repository root)"
"""How to build the environments, as the benchmarks print it when one is missing."""


def peers_dir(flag: str | None = None) -> Path:
    """The peers' directory: `flag` (--peers), else $RICHNESS_PEERS, else ../peers."""
    default = Path(__file__).resolve().parent.parent.parent / "peers"
    return Path(flag or os.environ.get("RICHNESS_PEERS") or default)


def peer_python(name: str, flag: str | None = None) -> Path:
    """The interpreter of peer environment `name` ("mup" or "nt") in `peers_dir(flag)`."""
    return peers_dir(flag) / name / "bin" / "python"

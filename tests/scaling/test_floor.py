"""Floor 1 imports no torch (STYLE.md §3)."""

import subprocess
import sys


def test_scaling_does_not_import_torch():
    code = "import sys, richness.scaling; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

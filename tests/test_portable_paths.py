"""Nothing names one machine's absolute paths; benchmarks find the peers' environments anywhere."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE_PATH = re.compile("/" + "(work|home|root)/")  # split, so this file does not match itself


def test_code_and_docs_name_no_absolute_machine_path():
    files = [ROOT / "README.md"]
    for folder in ("src", "benchmarks", "docs", "tests"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".yaml")]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]
    assert not found, "\n".join(found)


def test_peers_dir_is_the_flag_then_the_environment_then_beside_the_repository(monkeypatch):
    spec = importlib.util.spec_from_file_location("_peers", ROOT / "benchmarks" / "_peers.py")
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    monkeypatch.delenv("RICHNESS_PEERS", raising=False)
    assert peers.peers_dir() == ROOT.parent / "peers"
    monkeypatch.setenv("RICHNESS_PEERS", "from-env")
    assert peers.peer_python("mup") == Path("from-env/mup/bin/python")
    assert peers.peer_python("nt", "from-flag") == Path("from-flag/nt/bin/python")

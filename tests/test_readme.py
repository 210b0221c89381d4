"""The README's Python example runs as written."""

import re
from pathlib import Path


def test_readme_python_example_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["p"].predict()["dh"] == 0.25


def test_readme_llama_example_runs():
    import pytest

    pytest.importorskip("transformers")
    import torch

    import richness as rn

    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "make_llama" in b)
    probe_ids = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(0))
    namespace: dict = {"rn": rn, "probe_ids": probe_ids}
    exec(compile(block, "README.md", "exec"), namespace)
    model = namespace["model"]
    scales = {m.scaling for m in model.modules() if type(m).__name__ == "LlamaAttention"}
    d_head, d_head0 = 512 // 4, 64 // 4
    (scale,) = scales
    assert scale == pytest.approx(d_head0 / d_head / d_head0**0.5)  # μP: ∝ 1/d_head, SP at n0
    assert "dh/model.model.embed_tokens" in namespace["meter"].measure()

"""richness.data on the real files of ../shared/data (CIFAR-10 subset, WikiText-2).

The files live beside the repository, never in it (../shared/data/README.md says what they
are); on a machine without them every test here skips and says so.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from richness.data import UNK, check_vocabulary, load_dataset
from richness.sweep import SpecError, parse_spec

SHARED = Path(__file__).parents[1] / ".." / "shared" / "data"
CIFAR = SHARED / "cifar10-subset"
WIKI = SHARED / "wikitext-2"
SPEC = {"widths": [8], "richness": [0.0], "optimizer": {"lr": 0.1}}


@pytest.fixture(scope="module")
def cifar() -> Path:
    if not (CIFAR / "test_batch.bin").is_file():
        pytest.skip(f"the CIFAR-10 subset is not at {CIFAR.resolve()} (../shared/data)")
    return CIFAR


@pytest.fixture(scope="module")
def wiki() -> Path:
    if not (WIKI / "wiki.valid.txt").is_file() or not (WIKI / "wiki.test.txt").is_file():
        pytest.skip(f"WikiText-2 is not at {WIKI.resolve()} (../shared/data)")
    return WIKI


# --------------------------------------------------------------------------------------------
# CIFAR-10 subset: the official binary layout, 10,000 training and 10,000 test images
# --------------------------------------------------------------------------------------------


def test_cifar10_subset_matches_its_readme(cifar: Path) -> None:
    digest = hashlib.sha256((cifar / "test_batch.bin").read_bytes()).hexdigest()
    assert digest.startswith("c3014b3b")
    ds = load_dataset(
        "cifar10", data_dir=cifar, n_train=10_000, n_probe=0, n_test=None, standardize=False
    )
    assert ds.x_train.shape == (10_000, 3, 32, 32) and ds.x_test.shape == (10_000, 3, 32, 32)
    assert ds.meta["format"] == "bin" and ds.n_classes == 10
    # Class-balanced: 1,000 images of each class in both splits.
    for y in (ds.y_train, ds.y_test):
        assert y.sum(0).tolist() == [1000.0] * 10
    # The per-channel means of the training subset (README: 125.8, 123.2, 114.0 grey levels).
    means = (ds.x_train.double().mean(dim=(0, 2, 3)) * 255).tolist()
    assert means == pytest.approx([125.8, 123.2, 114.0], abs=0.05)
    # The first record of the file, read by hand: label byte, then R, G, B planes row-major.
    raw = np.frombuffer((cifar / "test_batch.bin").read_bytes()[:3073], np.uint8)
    torch.testing.assert_close(
        ds.x_test[0], torch.from_numpy(raw[1:] / 255).float().view(3, 32, 32)
    )
    assert int(ds.y_test[0].argmax()) == raw[0]


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar10_subset_in_the_python_format_reads_the_same(
    cifar: Path, tmp_path: Path, protocol: int
) -> None:
    """The same records as python-version pickles (written to tmp, not into the repository)."""
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    for name in names:
        records = np.fromfile(cifar / f"{name}.bin", np.uint8).reshape(-1, 3073)
        batch = {
            b"batch_label": f"{name} of the subset".encode(),
            b"labels": records[:, 0].astype(int).tolist(),
            b"data": np.ascontiguousarray(records[:, 1:]),
            b"filenames": [f"{i}.png".encode() for i in range(len(records))],
        }
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    kw = {"n_train": 500, "n_probe": 50, "n_test": 200, "seed": 3}
    py = load_dataset("cifar10", data_dir=tmp_path, **kw)
    binary = load_dataset("cifar10", data_dir=cifar, **kw)
    assert py.meta["format"] == "py" and binary.meta["format"] == "bin"
    for split in ("x_train", "y_train", "x_probe", "x_test", "y_test"):
        assert torch.equal(getattr(py, split), getattr(binary, split)), split


def test_cifar10_spec_validates_on_the_subset(cifar: Path) -> None:
    data = {"kind": "cifar10", "data_dir": str(cifar), "n_train": 1000, "n_test": None}
    assert parse_spec({**SPEC, "data": data}).data.model_dump()["data_dir"] == str(cifar)
    with pytest.raises(SpecError, match=r"n_train=10001 is outside \[1, 10000\]"):
        parse_spec({**SPEC, "data": {**data, "n_train": 10_001}})


# --------------------------------------------------------------------------------------------
# WikiText-2: validation split to train, test split to test
# --------------------------------------------------------------------------------------------


def test_wikitext2_characters(wiki: Path) -> None:
    ds = load_dataset(
        "text",
        path=wiki / "wiki.valid.txt",
        test_path=wiki / "wiki.test.txt",
        tokenizer="char",
        seq_len=64,
        n_train=512,
        n_test=128,
        n_probe=32,
    )
    vocab = ds.meta["vocab"]
    assert len(vocab) == 123 and vocab[0] == UNK  # README: 122 distinct characters, + <unk>
    assert ds.x_train.shape == (512, 64) and ds.y_train.shape == (512, 64 * 123)
    text = (wiki / "wiki.valid.txt").read_text(encoding="utf-8")
    assert ds.meta["n_tokens"] == len(text) == 1_115_017
    # 15 characters of the test split never occur in the validation split: they read as <unk>.
    assert 0 < ds.meta["unknown_test_fraction"] < 1e-3
    i = int(ds.meta["train_index"][0])
    assert "".join(vocab[t] for t in ds.x_train[0].tolist()) == text[65 * i : 65 * i + 64]
    check_vocabulary(ds, 123)
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        check_vocabulary(ds, 100)


def test_wikitext2_words(wiki: Path) -> None:
    ds = load_dataset(
        "text",
        path=wiki / "wiki.valid.txt",
        test_path=wiki / "wiki.test.txt",
        tokenizer="word",
        seq_len=32,
        n_train=256,
        n_test=64,
        n_probe=16,
        max_vocab=2048,
    )
    assert ds.n_classes == 2048 and ds.meta["vocab"][0] == UNK
    assert {"the", ",", ".", "@-@"} <= set(ds.meta["vocab"])  # the most frequent, kept
    # Whitespace split: 213,886 words (the README's 217,646 tokens count an <eos> per line).
    assert ds.meta["n_tokens"] == 213_886
    full = load_dataset(
        "text",
        path=wiki / "wiki.valid.txt",
        test_path=wiki / "wiki.test.txt",
        tokenizer="word",
        seq_len=8,
        n_train=4,
        n_test=4,
        n_probe=4,
    )
    assert len(full.meta["vocab"]) == 13_776  # the split's distinct words, <unk> among them
    assert 0.01 < full.meta["unknown_test_fraction"] < 0.05


def test_wikitext2_spec_and_the_transformer_trains_on_it(wiki: Path) -> None:
    from richness.nn.models import Transformer

    data = {
        "kind": "text",
        "path": str(wiki / "wiki.valid.txt"),
        "test_path": str(wiki / "wiki.test.txt"),
        "seq_len": 16,
        "n_train": 32,
        "n_test": 8,
        "n_probe": 8,
    }
    spec = parse_spec({**SPEC, "model": {"kind": "transformer", "depth": 1}, "data": data})
    ds = load_dataset(**spec.data.model_dump())
    torch.manual_seed(0)
    model = Transformer(ds.n_classes, 32, n_heads=2, seq_len=16)
    check_vocabulary(ds, ds.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(ds.x_train) - ds.y_train) ** 2).sum(1).mean()  # (N, T·V) as for chars
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]
    with pytest.raises(SpecError, match=r"path='.*wiki\.valid\.txt' is too short"):
        parse_spec({**SPEC, "data": {**data, "seq_len": 4096, "n_train": 300}})

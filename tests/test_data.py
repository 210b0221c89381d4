"""Tests of richness.data: digits, synthetic teachers, text files, and the CIFAR-10 readers on
tiny files (tests/test_data_real.py reads the real files of ../shared/data)."""

from __future__ import annotations

import math
import os
import pickle
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from richness.data import (
    CIFAR10_CLASSES,
    UNK,
    Dataset,
    check_dataset,
    check_vocabulary,
    load_dataset,
)

# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_raw() -> tuple[np.ndarray, np.ndarray]:
    return load_digits(return_X_y=True)


def test_digits_shapes_and_dtype() -> None:
    ds = load_dataset("digits", n_train=100, n_test=50, n_probe=30, seed=3)
    assert isinstance(ds, Dataset)
    assert ds.x_train.shape == (100, 64) and ds.y_train.shape == (100, 10)
    assert ds.x_test.shape == (50, 64) and ds.y_test.shape == (50, 10)
    assert ds.x_probe.shape == (30, 64) and ds.y_probe is not None
    assert ds.y_probe.shape == (30, 10)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.float32
    assert ds.name == "digits" and ds.n_classes == 10
    assert ds.input_shape == (64,) and ds.d_in == 64 and ds.d_out == 10
    assert ds.x_train.device.type == "cpu"
    assert load_dataset("digits", dtype="float64").x_train.dtype == torch.float64


def test_digits_standardized_on_training_split_only(digits_raw) -> None:
    pixels, labels = digits_raw
    ds = load_dataset("digits", n_train=200, n_test=100, n_probe=50, seed=0, dtype=torch.float64)
    train = torch.from_numpy(pixels[ds.meta["train_index"].numpy()])
    mean, std = train.mean(0), train.std(0, correction=0)
    constant = std < 1e-8
    assert constant.any(), "digits has always-blank pixels; the zero-std guard must be exercised"
    # Training split: mean 0 everywhere, std 1 where the pixel varies, exactly 0 where it doesn't.
    torch.testing.assert_close(ds.x_train.mean(0), torch.zeros(64, dtype=torch.float64))
    got_std = ds.x_train.std(0, correction=0)
    torch.testing.assert_close(
        got_std[~constant], torch.ones(int((~constant).sum()), dtype=torch.float64)
    )
    assert torch.all(ds.x_train[:, constant] == 0)
    assert torch.isfinite(ds.x_test).all() and torch.isfinite(ds.x_probe).all()
    # Test and probe sets use the training statistics, not their own.
    safe_std = torch.where(constant, torch.ones_like(std), std)
    for split in ("test", "probe"):
        raw = torch.from_numpy(pixels[ds.meta[f"{split}_index"].numpy()])
        torch.testing.assert_close(getattr(ds, f"x_{split}"), (raw - mean) / safe_std)
    # Targets: one-hot rows of the right labels.
    for split in ("train", "test", "probe"):
        y = getattr(ds, f"y_{split}")
        expected = torch.from_numpy(labels[ds.meta[f"{split}_index"].numpy()])
        assert torch.equal(y.argmax(1), expected)
        assert torch.equal(y.sum(1), torch.ones(len(y), dtype=torch.float64))


def test_digits_probe_and_test_never_meet_training_set(digits_raw) -> None:
    pixels, _ = digits_raw
    ds = load_dataset("digits", n_train=256, n_test=None, n_probe=128, seed=7)
    train, probe, test = (set(ds.meta[f"{s}_index"].tolist()) for s in ("train", "probe", "test"))
    assert len(train) == 256 and len(probe) == 128 and len(test) == 1797 - 256 - 128
    assert not train & probe and not train & test and not probe & test
    # The raw images differ too (digits has no duplicate images).
    raw_train = {pixels[i].tobytes() for i in train}
    assert not any(pixels[i].tobytes() in raw_train for i in probe)


def test_digits_deterministic_by_seed() -> None:
    a = load_dataset("digits", n_train=64, n_test=32, n_probe=16, seed=5)
    b = load_dataset("digits", n_train=64, n_test=32, n_probe=16, seed=5)
    c = load_dataset("digits", n_train=64, n_test=32, n_probe=16, seed=6)
    for name in ("x_train", "y_train", "x_test", "y_test", "x_probe"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.meta["train_index"], c.meta["train_index"])


def test_digits_images_and_centered_targets() -> None:
    ds = load_dataset(
        "digits",
        n_train=128,
        n_test=16,
        n_probe=8,
        as_images=True,
        center_targets=True,
        dtype=torch.float64,
    )
    assert ds.x_train.shape == (128, 1, 8, 8) and ds.x_probe.shape == (8, 1, 8, 8)
    assert ds.input_shape == (1, 8, 8) and ds.d_in == 64
    # Per-channel standardization (one channel): one mean and std over all training pixels.
    assert abs(ds.x_train.mean().item()) < 1e-12
    assert abs(ds.x_train.std(correction=0).item() - 1) < 1e-12
    # Centered one-hot: 1 - 1/10 for the class, -1/10 elsewhere, rows sum to 0.
    torch.testing.assert_close(ds.y_train.sum(1), torch.zeros(128, dtype=torch.float64))
    assert ds.y_train.unique().tolist() == pytest.approx([-0.1, 0.9])
    flat = load_dataset(
        "digits", n_train=128, n_test=16, n_probe=8, standardize="channel", dtype=torch.float64
    )
    torch.testing.assert_close(flat.x_train.reshape(128, 1, 8, 8), ds.x_train)
    raw = load_dataset("digits", n_train=16, n_test=0, n_probe=0, standardize=False)
    assert raw.x_train.min() >= 0 and raw.x_train.max() <= 16 and raw.x_test.shape == (0, 64)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_train": 0}, ValueError, r"n_train=0 is outside \[1, inf\)"),
        ({"n_train": 2000}, ValueError, r"n_train=2000 is outside \[1, 1797\]"),
        ({"n_train": 1700, "n_probe": 128}, ValueError, r"n_probe=128 is outside \[0, 97\]"),
        ({"n_train": 1000, "n_probe": 500, "n_test": 400}, ValueError, r"n_test=400 .* \[0, 297\]"),
        ({"n_probe": -1}, ValueError, r"n_probe=-1 is outside \[0, inf\)"),
        ({"seed": -3}, ValueError, r"seed=-3 is outside"),
        ({"n_train": True}, TypeError, "n_train must be an integer"),
        ({"n_train": 10.0}, TypeError, "n_train must be an integer"),
        ({"dtype": torch.int64}, ValueError, "dtype=torch.int64 is not a floating"),
        ({"dtype": "float17"}, ValueError, "dtype='float17'"),
        ({"standardize": "pixel"}, ValueError, "standardize='pixel'"),
        ({"teacher": "linear"}, TypeError, "unexpected keyword argument.*teacher.*as_images"),
    ],
)
def test_digits_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        load_dataset("digits", **kwargs)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"kind='mnist' .* 'digits', 'synthetic', 'cifar10'"):
        load_dataset("mnist")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# synthetic teachers
# --------------------------------------------------------------------------------------------


def test_synthetic_linear_teacher() -> None:
    ds = load_dataset(
        "synthetic", n_train=50, n_test=20, n_probe=10, seed=1, d_in=7, d_out=3, dtype=torch.float64
    )
    assert ds.name == "synthetic-linear" and ds.n_classes is None
    assert ds.x_train.shape == (50, 7) and ds.y_train.shape == (50, 3)
    w = ds.meta["teacher_w"]
    assert w.shape == (3, 7)
    torch.testing.assert_close(w.norm(dim=1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ds.y_train, ds.x_train @ w.T)
    torch.testing.assert_close(ds.y_test, ds.x_test @ w.T)
    torch.testing.assert_close(ds.y_probe, ds.x_probe @ w.T)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_synthetic_nonlinear_teacher(activation: str) -> None:
    ds = load_dataset(
        "synthetic",
        n_train=4000,
        n_test=10,
        n_probe=10,
        seed=2,
        d_in=16,
        d_out=64,
        teacher="nonlinear",
        activation=activation,
        teacher_width=32,
        dtype=torch.float64,
    )
    assert ds.name == f"synthetic-nonlinear-{activation}"
    m = ds.meta
    assert m["teacher_w1"].shape == (32, 16) and m["teacher_a"].shape == (64, 32)
    phi = torch.tanh if activation == "tanh" else torch.relu
    expected = m["teacher_scale"] * phi(ds.x_train @ m["teacher_w1"].T) @ m["teacher_a"].T
    torch.testing.assert_close(ds.y_train, expected / math.sqrt(32))
    # c = 1/sqrt(E phi(z)^2): 1/sqrt(1/2) for ReLU, about 1/sqrt(0.394) for tanh.
    second_moment = {"relu": 0.5, "tanh": 0.3943}[activation]
    assert m["teacher_scale"] == pytest.approx(second_moment**-0.5, rel=1e-3)
    # E y^2 = 1 per output on average over the teacher's weights (64 outputs, 4000 points).
    assert ds.y_train.pow(2).mean().item() == pytest.approx(1.0, abs=0.25)


def test_synthetic_noise_seeds_and_streams() -> None:
    common = {"n_test": 2000, "n_probe": 5, "d_in": 4, "dtype": torch.float64}
    clean = load_dataset("synthetic", n_train=3000, seed=0, **common)
    noisy = load_dataset("synthetic", n_train=3000, seed=0, noise=0.5, **common)
    torch.testing.assert_close(noisy.x_train, clean.x_train)
    residual = noisy.y_train - noisy.x_train @ noisy.meta["teacher_w"].T
    assert residual.std().item() == pytest.approx(0.5, rel=0.06)
    torch.testing.assert_close(noisy.y_test, clean.y_test)  # test targets stay noiseless
    # Test and probe sets do not move when n_train changes.
    small = load_dataset("synthetic", n_train=10, seed=0, **common)
    torch.testing.assert_close(small.x_test, clean.x_test)
    torch.testing.assert_close(small.x_probe, clean.x_probe)
    # A fixed teacher_seed keeps the teacher while the sample changes; seed alone moves both.
    a = load_dataset("synthetic", n_train=10, seed=1, teacher_seed=9, **common)
    b = load_dataset("synthetic", n_train=10, seed=2, teacher_seed=9, **common)
    c = load_dataset("synthetic", n_train=10, seed=2, **common)
    torch.testing.assert_close(a.meta["teacher_w"], b.meta["teacher_w"])
    assert not torch.equal(a.x_train, b.x_train)
    assert not torch.equal(b.meta["teacher_w"], c.meta["teacher_w"])
    # The teacher's stream is not the data's stream.
    assert not torch.equal(c.meta["teacher_w"].flatten(), c.x_train.flatten()[:4])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"teacher": "quadratic"}, ValueError, "teacher='quadratic'"),
        ({"teacher": "nonlinear", "activation": "gelu"}, ValueError, "activation='gelu'"),
        ({"noise": -0.1}, ValueError, r"noise=-0.1 is outside \[0, inf\)"),
        ({"noise": float("nan")}, ValueError, "noise=nan"),
        ({"n_test": None}, ValueError, "n_test=None"),
        ({"d_in": 0}, ValueError, r"d_in=0 is outside \[1, inf\)"),
        ({"d_out": 2.5}, TypeError, "d_out must be an integer"),
        ({"teacher_width": 0}, ValueError, "teacher_width=0"),
        ({"as_images": True}, TypeError, "unexpected keyword argument.*as_images"),
    ],
)
def test_synthetic_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        load_dataset("synthetic", **kwargs)


def test_dataset_checks_and_to() -> None:
    ds = load_dataset("synthetic", n_train=4, n_test=3, n_probe=2, d_in=5)
    moved = ds.to(dtype=torch.float64)
    assert moved.x_train.dtype == torch.float64 and moved.y_probe.dtype == torch.float64
    assert ds.x_train.dtype == torch.float32  # frozen: the original is untouched
    assert "x_train=(4, 5)" in repr(ds)
    with pytest.raises(ValueError, match=r"x_test must be \(N, \*input_shape\)"):
        Dataset(ds.x_train, ds.y_train, ds.x_test[:, :3], ds.y_test, ds.x_probe, "bad")
    with pytest.raises(ValueError, match="y_train must be"):
        Dataset(ds.x_train, ds.y_train[:2], ds.x_test, ds.y_test, ds.x_probe, "bad")
    with pytest.raises(TypeError, match="x_probe must be a torch.Tensor"):
        Dataset(ds.x_train, ds.y_train, ds.x_test, ds.y_test, np.zeros((2, 5)), "bad")


# --------------------------------------------------------------------------------------------
# CIFAR-10 on tiny files in both official formats
# --------------------------------------------------------------------------------------------

_BATCH_SIZES = (3, 4, 2, 5, 4)  # 18 training records over the five batches
_TEST_SIZE = 7


def _fake_cifar(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Returns pixels (n, 3072) uint8 and labels (n,) per batch: five training, then test."""
    rng = np.random.default_rng(seed)
    sizes = (*_BATCH_SIZES, _TEST_SIZE)
    pixels = [rng.integers(0, 256, (n, 3072), dtype=np.uint8) for n in sizes]
    labels = [rng.integers(0, 10, n).astype(np.int64) for n in sizes]
    return pixels, labels


def _batch_names(fmt: str) -> list[str]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return [n + ".bin" for n in names] if fmt == "bin" else names


def _write_binary(root: Path, pixels, labels) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, x, y in zip(_batch_names("bin"), pixels, labels, strict=True):
        records = np.concatenate([y.astype(np.uint8)[:, None], x], axis=1)  # (n, 3073)
        records.tofile(root / name)


def _py2_str(b: bytes) -> bytes:
    """A Python 2 str as cPickle protocol 2 writes it: SHORT_BINSTRING or BINSTRING."""
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b


def _py2_int(n: int) -> bytes:
    return b"K" + bytes([n]) if n < 256 else b"M" + struct.pack("<H", n)  # BININT1 / BININT2


def _py2_batch_pickle(x: np.ndarray, y: np.ndarray, batch_label: bytes) -> bytes:
    """The bytes of a batch as the official files hold it (Python 2 cPickle, protocol 2).

    {'data': numpy uint8 array (n, 3072), 'labels': [int], 'batch_label': str,
    'filenames': [str]}, the array rebuilt by numpy.core.multiarray._reconstruct.
    """
    n = x.shape[0]
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
        + b"(" + _py2_int(1) + _py2_int(n) + _py2_int(3072) + b"\x86"  # state: 1, (n, 3072),
        + b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"  # dtype,
        + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + _py2_int(0)
        + b"tb"
        + b"\x89" + _py2_str(x.tobytes()) + b"tb"  # not Fortran, raw bytes
    )  # fmt: skip
    labels = b"](" + b"".join(_py2_int(int(v)) for v in y) + b"e"
    names = b"](" + b"".join(_py2_str(f"img_{i}.png".encode()) for i in range(n)) + b"e"
    return (
        b"\x80\x02}("
        + _py2_str(b"data") + array
        + _py2_str(b"labels") + labels
        + _py2_str(b"batch_label") + _py2_str(batch_label)
        + _py2_str(b"filenames") + names
        + b"u."
    )  # fmt: skip


def _write_python(root: Path, pixels, labels, *, py3: bool = False, protocol: int = 4) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, x, y) in enumerate(zip(_batch_names("py"), pixels, labels, strict=True)):
        label = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        if py3:  # re-pickled by Python 3 and numpy 2: numpy._core.multiarray._reconstruct
            batch = {
                b"batch_label": label.encode(),
                b"labels": y.tolist(),
                b"data": x,
                b"filenames": [f"img_{j}.png".encode() for j in range(len(y))],
            }
            data = pickle.dumps(batch, protocol=protocol)
        else:
            data = _py2_batch_pickle(x, y, label.encode())
        (root / name).write_bytes(data)


def test_py2_pickle_helper_matches_official_structure() -> None:
    pixels, labels = _fake_cifar()
    data = _py2_batch_pickle(pixels[0], labels[0], b"training batch 1 of 5")
    # Our own bytes, so the plain unpickler is safe here: check the structure we emulate.
    batch = pickle.loads(data, encoding="bytes")
    assert set(batch) == {b"data", b"labels", b"batch_label", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and np.array_equal(batch[b"data"], pixels[0])
    assert batch[b"labels"] == labels[0].tolist() and batch[b"filenames"][0] == b"img_0.png"


@pytest.fixture(scope="module")
def cifar_dirs(tmp_path_factory) -> dict[str, Path]:
    """Parents holding cifar-10-batches-bin, -py (Python 2 pickles) and -py (Python 3)."""
    pixels, labels = _fake_cifar()
    base = tmp_path_factory.mktemp("cifar")
    _write_binary(base / "bin" / "cifar-10-batches-bin", pixels, labels)
    _write_python(base / "py2" / "cifar-10-batches-py", pixels, labels)
    _write_python(base / "py3" / "cifar-10-batches-py", pixels, labels, py3=True)
    # Python 3 at protocol 2 writes bytes as _codecs.encode(text, "latin1").
    _write_python(base / "py3p2" / "cifar-10-batches-py", pixels, labels, py3=True, protocol=2)
    return {"bin": base / "bin", "py2": base / "py2", "py3": base / "py3", "py3p2": base / "py3p2"}


@pytest.mark.parametrize("fmt", ["bin", "py2", "py3", "py3p2"])
@pytest.mark.parametrize("parent", [True, False])
def test_cifar10_reads_official_formats(cifar_dirs, fmt: str, parent: bool) -> None:
    pixels, labels = _fake_cifar()
    train_pixels, train_labels = np.concatenate(pixels[:5]), np.concatenate(labels[:5])
    data_dir = cifar_dirs[fmt]
    if not parent:
        data_dir = data_dir / ("cifar-10-batches-bin" if fmt == "bin" else "cifar-10-batches-py")
    ds = load_dataset(
        "cifar10",
        data_dir=data_dir,
        n_train=10,
        n_probe=5,
        n_test=None,
        seed=4,
        standardize=False,
        dtype=torch.float64,
    )
    assert ds.name == "cifar10" and ds.n_classes == 10
    assert ds.meta["format"] == ("bin" if fmt == "bin" else "py")
    assert ds.meta["classes"] == CIFAR10_CLASSES
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.y_train.shape == (10, 10)
    assert ds.x_probe.shape == (5, 3, 32, 32) and ds.x_test.shape == (_TEST_SIZE, 3, 32, 32)
    idx_train, idx_probe = ds.meta["train_index"].numpy(), ds.meta["probe_index"].numpy()
    assert not set(idx_train) & set(idx_probe)
    # Record layout: 1024 red, 1024 green, 1024 blue bytes, each plane row-major; pixels / 255.
    expected = torch.from_numpy(train_pixels[idx_train]).double().reshape(10, 3, 32, 32) / 255
    torch.testing.assert_close(ds.x_train, expected)
    assert ds.x_train[0, 1, 2, 3] == train_pixels[idx_train[0], 1024 + 2 * 32 + 3] / 255
    assert torch.equal(ds.y_train.argmax(1), torch.from_numpy(train_labels[idx_train]))
    assert torch.equal(ds.y_probe.argmax(1), torch.from_numpy(train_labels[idx_probe]))
    # n_test=None: the whole test split in file order.
    test_x = torch.from_numpy(pixels[5]).double().reshape(-1, 3, 32, 32) / 255
    torch.testing.assert_close(ds.x_test, test_x)
    assert torch.equal(ds.y_test.argmax(1), torch.from_numpy(labels[5]))


def test_cifar10_formats_agree_and_standardize(cifar_dirs) -> None:
    kw = {"n_train": 12, "n_probe": 3, "n_test": 4, "seed": 11, "dtype": torch.float64}
    sets = {fmt: load_dataset("cifar10", data_dir=d, **kw) for fmt, d in cifar_dirs.items()}
    for other in ("py2", "py3"):
        for name in ("x_train", "y_train", "x_test", "y_test", "x_probe", "y_probe"):
            assert torch.equal(getattr(sets["bin"], name), getattr(sets[other], name)), name
    ds = sets["bin"]
    # Per-channel standardization with training-subset statistics.
    torch.testing.assert_close(ds.x_train.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(
        ds.x_train.std(dim=(0, 2, 3), correction=0), torch.ones(3, dtype=torch.float64)
    )
    flat = load_dataset("cifar10", data_dir=cifar_dirs["bin"], as_images=False, **kw)
    assert flat.x_train.shape == (12, 3072)
    torch.testing.assert_close(flat.x_train.reshape(12, 3, 32, 32), ds.x_train)
    again = load_dataset("cifar10", data_dir=cifar_dirs["bin"], **kw)
    assert torch.equal(again.x_train, ds.x_train)
    centered = load_dataset("cifar10", data_dir=cifar_dirs["bin"], center_targets=True, **kw)
    torch.testing.assert_close(centered.y_train, ds.y_train - 0.1)


def test_cifar10_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)
    message = str(info.value)
    assert str(tmp_path) in message
    for name in [*_batch_names("bin"), *_batch_names("py")]:
        assert name in message
    assert "cifar-10-batches-bin" in message and "cifar-10-batches-py" in message
    # An incomplete copy is named, with what it lacks.
    pixels, labels = _fake_cifar()
    _write_binary(tmp_path / "cifar-10-batches-bin", pixels, labels)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"incomplete copy.*lacks data_batch_3\.bin"):
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs data_dir"):
        load_dataset("cifar10")


def test_cifar10_bad_sizes_and_corrupt_files(cifar_dirs, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"n_train=19 is outside \[1, 18\]"):
        load_dataset("cifar10", data_dir=cifar_dirs["bin"], n_train=19)
    with pytest.raises(ValueError, match=r"n_probe=5 is outside \[0, 4\]"):
        load_dataset("cifar10", data_dir=cifar_dirs["bin"], n_train=14, n_probe=5)
    with pytest.raises(ValueError, match=r"n_test=8 is outside \[0, 7\]"):
        load_dataset("cifar10", data_dir=cifar_dirs["py2"], n_train=4, n_probe=1, n_test=8)
    pixels, labels = _fake_cifar()
    _write_binary(tmp_path, pixels, labels)
    with open(tmp_path / "data_batch_2.bin", "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(ValueError, match="not a multiple of 3073"):
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)


class _Evil:
    """Runs a shell command when unpickled by a plain unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["reduce", "protocol0", "builtins", "numpy_load"])
def test_cifar10_refuses_malicious_pickle(tmp_path: Path, payload: str) -> None:
    pixels, labels = _fake_cifar()
    root = tmp_path / "cifar-10-batches-py"
    _write_python(root, pixels, labels)
    marker = tmp_path / "pwned"
    if payload == "reduce":  # a well-formed batch whose 'data' runs os.system
        evil = {b"data": _Evil(marker), b"labels": [0], b"batch_label": b"x", b"filenames": []}
        data, refused = pickle.dumps(evil, protocol=4), r"'(posix|os|nt)\.system'"
    elif payload == "protocol0":
        data, refused = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(), r"'os\.system'"
    elif payload == "builtins":
        code = f"open({str(marker)!r}, 'w')"
        data, refused = f"cbuiltins\neval\n(S{code!r}\ntR.".encode(), r"'builtins\.eval'"
    else:  # an allowed module, a name outside the list
        data, refused = f"cnumpy\nload\n(S'{marker}'\ntR.".encode(), r"'numpy\.load'"
    (root / "data_batch_2").write_bytes(data)
    with pytest.raises(pickle.UnpicklingError, match=refused) as info:
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)
    assert "data_batch_2" in str(info.value) and "only numpy arrays" in str(info.value)
    assert not marker.exists()


def test_cifar10_refuses_codecs_other_than_latin1(tmp_path: Path) -> None:
    pixels, labels = _fake_cifar()
    root = tmp_path / "cifar-10-batches-py"
    _write_python(root, pixels, labels)
    (root / "test_batch").write_bytes(b"c_codecs\nencode\n(Vx\nVrot13\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"'.*test_batch'.*encoding 'rot13'"):
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)


def test_cifar10_rejects_wrong_structure(tmp_path: Path) -> None:
    pixels, labels = _fake_cifar()
    _write_python(tmp_path, pixels, labels, py3=True)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}, protocol=4))
    with pytest.raises(ValueError, match="has no 'data' entry"):
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)
    (tmp_path / "test_batch").write_bytes(b"\x80\x02}(U\x04data")  # truncated
    with pytest.raises(ValueError, match="not a readable CIFAR-10 python batch"):
        load_dataset("cifar10", data_dir=tmp_path, n_train=4, n_probe=1, n_test=1)


def test_empty_test_split_of_images():
    ds = load_dataset("digits", n_train=16, n_test=0, n_probe=4, as_images=True)
    assert tuple(ds.x_test.shape) == (0, 1, 8, 8)


# --------------------------------------------------------------------------------------------
# text files (WikiText format)
# --------------------------------------------------------------------------------------------

_TEXT = (
    " = Valkyria Chronicles = \n\n"
    " The game began development in 2010 , carrying over a large portion of the work . \n"
    " It met with positive sales in Japan , and was praised by both Japanese and western "
    "critics . \n"
) * 6


def _text_file(tmp_path: Path, text: str, name: str = "wiki.train.tokens") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_chars_follow_the_chars_contract(tmp_path: Path) -> None:
    path = _text_file(tmp_path, _TEXT)
    ds = load_dataset("text", path=path, n_train=10, n_test=5, n_probe=3, seq_len=8, seed=1)
    vocab = ds.meta["vocab"]
    assert vocab[0] == UNK and list(vocab[1:]) == sorted(set(_TEXT))
    v = len(vocab)
    assert ds.name == "text" and ds.n_classes == v
    assert ds.x_train.dtype == torch.int64 and ds.x_train.shape == (10, 8)
    assert ds.y_train.shape == (10, 8 * v) and ds.y_train.dtype == torch.float32
    assert ds.x_probe.shape == (3, 8) and ds.x_test.shape == (5, 8)
    # Each window is a slice of seq_len + 1 = 9 characters of the file, at its index times 9;
    # x is its first 8, the one-hot targets its last 8.
    for x, y, idx in [(ds.x_train, ds.y_train, ds.meta["train_index"])]:
        nxt = y.reshape(len(y), 8, v).argmax(-1)
        assert torch.equal(nxt[:, :-1], x[:, 1:])
        for row, target, i in zip(x, nxt, idx.tolist(), strict=True):
            window = "".join(vocab[t] for t in [*row.tolist(), int(target[-1])])
            assert window == _TEXT[9 * i : 9 * i + 9]
    # Disjoint windows, deterministic by seed.
    parts = [set(ds.meta[f"{s}_index"].tolist()) for s in ("train", "probe", "test")]
    assert sum(map(len, parts)) == len(set().union(*parts)) == 18
    again = load_dataset("text", path=path, n_train=10, n_test=5, n_probe=3, seq_len=8, seed=1)
    other = load_dataset("text", path=path, n_train=10, n_test=5, n_probe=3, seq_len=8, seed=2)
    assert torch.equal(again.x_train, ds.x_train) and not torch.equal(other.x_train, ds.x_train)
    # n_test=None: every window left; float64 targets on request.
    rest = load_dataset("text", path=path, n_train=10, n_test=None, n_probe=3, seq_len=8)
    assert len(rest.x_test) == len(_TEXT) // 9 - 13
    wide = load_dataset("text", path=str(path), n_train=2, n_probe=1, n_test=1, dtype="float64")
    assert wide.y_train.dtype == torch.float64 and wide.x_train.shape == (2, 32)


def test_text_vocabulary_comes_from_the_training_file(tmp_path: Path) -> None:
    train = _text_file(tmp_path, "the cat sat on the mat . " * 20)
    test = _text_file(tmp_path, "the dog sat on the rug . <unk> " * 10, "wiki.test.tokens")
    kw = {"path": train, "test_path": test, "n_train": 4, "n_probe": 2, "seq_len": 5}
    words = load_dataset("text", tokenizer="word", n_test=None, **kw)
    assert words.meta["vocab"] == (UNK, ".", "cat", "mat", "on", "sat", "the")
    ids = torch.cat([words.x_test.flatten(), words.y_test.reshape(-1, 7).argmax(-1)])
    assert set(ids.tolist()) <= set(range(7)) and 0 in ids.tolist()  # dog, rug -> <unk>
    assert words.meta["unknown_test_fraction"] == pytest.approx(2 / 8)  # <unk> itself is known
    assert len(words.x_test) == 80 // 6  # every window of the test file, in file order
    assert torch.equal(words.meta["test_index"], torch.arange(80 // 6))
    chars = load_dataset("text", tokenizer="char", n_test=None, **kw)
    assert chars.meta["vocab"] == (UNK, *sorted(set("the cat sat on the mat . ")))
    unseen = sum(c not in "the cat sat on the mat . " for c in "the dog sat on the rug . <unk> ")
    assert chars.meta["unknown_test_fraction"] == pytest.approx(unseen / 31)  # d g r u < k >
    assert (chars.x_test == 0).any()  # unseen characters read as the unknown id
    # max_vocab keeps the most frequent tokens (ties in sorted order), the rest read as <unk>.
    small = load_dataset("text", tokenizer="word", n_test=2, max_vocab=3, **kw)
    assert small.meta["vocab"] == (UNK, "the", ".") or small.meta["vocab"] == (UNK, ".", "the")
    assert small.n_classes == 3


def test_text_bad_files_name_the_file_and_the_requirement(tmp_path: Path) -> None:
    kw = {"n_train": 4, "n_test": 2, "n_probe": 2, "seq_len": 8}
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(FileNotFoundError, match=r"path='.*nowhere\.txt' does not exist"):
        load_dataset("text", path=missing, **kw)
    with pytest.raises(ValueError, match=r"path='.*' is not a file"):
        load_dataset("text", path=tmp_path, **kw)
    empty = _text_file(tmp_path, "", "empty.txt")
    with pytest.raises(ValueError, match=r"path='.*empty\.txt' is empty"):
        load_dataset("text", path=empty, **kw)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café au lait ".encode("latin-1") * 50)
    with pytest.raises(ValueError, match=r"path='.*latin1\.txt' is not UTF-8 text: byte 3"):
        load_dataset("text", path=latin, **kw)
    blank = _text_file(tmp_path, " \n \n", "blank.txt")
    with pytest.raises(ValueError, match=r"blank\.txt' holds no word tokens"):
        load_dataset("text", path=blank, tokenizer="word", **kw)
    short = _text_file(tmp_path, "x" * 60, "short.txt")  # 6 windows of 9, 8 needed
    message = r"path='.*short\.txt' is too short: it holds 60 char tokens, 6 windows of "
    with pytest.raises(ValueError, match=message + r"seq_len \+ 1 = 9 .* need 8"):
        load_dataset("text", path=short, **kw)
    train = _text_file(tmp_path, _TEXT)
    with pytest.raises(FileNotFoundError, match=r"test_path='.*nowhere\.txt' does not exist"):
        load_dataset("text", path=train, test_path=missing, **kw)
    with pytest.raises(ValueError, match=r"test_path='.*short\.txt' is too short.*n_test=7"):
        load_dataset("text", path=train, test_path=short, **{**kw, "n_test": 7})
    tiny = _text_file(tmp_path, "abc", "tiny.txt")
    with pytest.raises(ValueError, match=r"test_path='.*tiny\.txt' is too short.*needs 1"):
        load_dataset("text", path=train, test_path=tiny, **{**kw, "n_test": None})
    with pytest.raises(ValueError, match="tokenizer='bpe'"):
        load_dataset("text", path=train, tokenizer="bpe", **kw)
    with pytest.raises(ValueError, match=r"seq_len=0 is outside \[1, 4096\]"):
        load_dataset("text", path=train, **{**kw, "seq_len": 0})
    with pytest.raises(ValueError, match=r"max_vocab=1 is outside \[2, inf\)"):
        load_dataset("text", path=train, max_vocab=1, **kw)
    with pytest.raises(ValueError, match="needs path="):
        load_dataset("text", **kw)


def test_text_refuses_targets_too_large_to_build(tmp_path: Path, monkeypatch) -> None:
    import richness.data as rd

    path = _text_file(tmp_path, _TEXT)
    monkeypatch.setattr(rd, "_MAX_TARGET_BYTES", 10_000)
    with pytest.raises(ValueError, match=r"one-hot targets .* GiB .* pass max_vocab"):
        load_dataset("text", path=path, n_train=10, n_test=0, n_probe=1, seq_len=8)
    ds = load_dataset("text", path=path, n_train=10, n_test=0, n_probe=1, seq_len=8, max_vocab=4)
    assert ds.n_classes == 4  # 11 windows x 8 x 4 x 4 bytes fit


def test_text_reads_a_changed_file_again(tmp_path: Path) -> None:
    path = _text_file(tmp_path, "ab" * 100)
    assert load_dataset("text", path=path, n_train=2, n_test=1, n_probe=1).n_classes == 3
    path.write_text("abc" * 100, encoding="utf-8")  # a new size: the cache sees a new file
    assert load_dataset("text", path=path, n_train=2, n_test=1, n_probe=1).n_classes == 4


def test_check_dataset_checks_sources_without_loading(tmp_path: Path, cifar_dirs) -> None:
    check_dataset("digits", n_train=32)
    check_dataset("cifar10", data_dir=cifar_dirs["bin"], n_train=4, n_test=2, n_probe=2)
    check_dataset("cifar10", data_dir=cifar_dirs["py2"], n_train=4, n_test=2, n_probe=2)
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found in data_dir="):
        check_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"n_train=19 is outside \[1, 18\]"):
        check_dataset("cifar10", data_dir=cifar_dirs["bin"], n_train=19)
    path = _text_file(tmp_path, _TEXT)
    check_dataset("text", path=path, n_train=4, n_test=2, n_probe=2)
    with pytest.raises(ValueError, match="is too short"):
        check_dataset("text", path=path, n_train=400, n_test=2, n_probe=2)
    with pytest.raises(TypeError, match="unexpected keyword argument.*n_trian"):
        check_dataset("text", path=path, n_trian=4)


def test_check_vocabulary_before_training(tmp_path: Path) -> None:
    chars = load_dataset("chars", n_train=8, n_test=4, n_probe=4, seq_len=16)
    check_vocabulary(chars, 28)
    check_vocabulary(chars, 64)  # a padded vocabulary reads every id
    with pytest.raises(ValueError, match=r"token ids in \[0, 27\] \(x_train\).*\[0, 16\)"):
        check_vocabulary(chars, 16)
    few = load_dataset(
        "text", path=_text_file(tmp_path, "ab" * 100), n_train=2, n_probe=1, n_test=1
    )
    xs = ("x_train", "x_probe", "x_test")  # ids 0, 1 only; the targets still span 3 tokens
    with pytest.raises(ValueError, match=r"one-hot targets over 3 tokens.*vocab_size=2"):
        check_vocabulary(replace(few, **{k: getattr(few, k).clamp(max=1) for k in xs}), 2)
    with pytest.raises(TypeError, match="not token ids"):
        check_vocabulary(load_dataset("digits", n_train=8, n_test=0, n_probe=1), 10)
    with pytest.raises(TypeError, match="vocab_size must be an integer"):
        check_vocabulary(chars, True)

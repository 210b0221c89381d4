"""Data sets for richness experiments: synthetic teachers, digits, local CIFAR-10, text files.

Every loader returns a :class:`Dataset` of CPU tensors (device follows the model: move the data
with ``Dataset.to``). Targets are regression targets for full-batch MSE training: one-hot rows for
the classification sets (optionally centered), teacher outputs for the synthetic set.

Nothing here touches the network: digits ships with scikit-learn, and CIFAR-10 is read from a
directory the user downloaded (https://www.cs.toronto.edu/~kriz/cifar.html), in either of its
two official formats. The python format is a set of pickles; they are read with a restricted
unpickler that builds numpy arrays and nothing else. Text is read from the user's UTF-8 files
(WikiText's ``wiki.*.tokens`` or any plain text).

Example:
    >>> import richness.data as rd
    >>> ds = rd.load_dataset("synthetic", n_train=8, n_test=4, n_probe=2, d_in=5, d_out=3)
    >>> tuple(ds.x_train.shape), tuple(ds.y_train.shape), tuple(ds.x_probe.shape)
    ((8, 5), (8, 3), (2, 5))
"""

from __future__ import annotations

import collections
import functools
import inspect
import math
import numbers
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

__all__ = [
    "CIFAR10_CLASSES",
    "UNK",
    "Dataset",
    "DatasetKind",
    "check_dataset",
    "check_vocabulary",
    "load_dataset",
]

DatasetKind = Literal["digits", "synthetic", "cifar10", "chars", "text"]
Standardize = bool | Literal["feature", "channel"]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_CIFAR_BIN_FILES = (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")
_CIFAR_PY_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 R, 1024 G, 1024 B bytes (row-major)
_STD_FLOOR = 1e-8  # a feature whose training std is below this is only centered, not scaled


# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train / test / probe split of torch tensors, ready for full-batch MSE training.

    The probe inputs are what ``rn.Meter`` measures on; they never overlap the training set.

    Attributes:
        x_train: (N_train, *input_shape) training inputs.
        y_train: (N_train, O) training targets.
        x_test: (N_test, *input_shape) test inputs.
        y_test: (N_test, O) test targets.
        x_probe: (N_probe, *input_shape) probe inputs, disjoint from the training inputs.
        name: "digits", "cifar10", "synthetic-linear", "synthetic-nonlinear-tanh", ...
        n_classes: the number of classes when targets are one-hot rows, None for regression.
        y_probe: (N_probe, O) targets of the probe inputs (noiseless for synthetic data), or None.
        meta: provenance: the indices drawn from the source data (``"train_index"``,
            ``"probe_index"``, ``"test_index"``), the standardization statistics, the teacher
            weights, ... Read it, don't rely on its exact keys across versions.

    Raises:
        TypeError: a field that should be a tensor is not one.
        ValueError: the shapes or dtypes of the splits disagree.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_probe: torch.Tensor
    name: str
    n_classes: int | None = None
    y_probe: torch.Tensor | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Invariants: every x_* has the same trailing shape and dtype; every y_* is (N, O) with
        # the same O and dtype, and as many rows as its inputs; y has x's dtype, unless x holds
        # integer token ids (then y is floating, as y_train).
        pairs = {
            "train": (self.x_train, self.y_train),
            "test": (self.x_test, self.y_test),
            "probe": (self.x_probe, self.y_probe),
        }
        for split, (x, y) in pairs.items():
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"x_{split} must be a torch.Tensor, got {type(x).__name__}")
            if y is not None and not isinstance(y, torch.Tensor):
                raise TypeError(f"y_{split} must be a torch.Tensor, got {type(y).__name__}")
        for split, (x, y) in pairs.items():
            if x.ndim < 2 or x.shape[1:] != self.x_train.shape[1:]:
                raise ValueError(
                    f"x_{split} must be (N, *input_shape) like x_train:\n"
                    f"  x_train.shape: {tuple(self.x_train.shape)}\n"
                    f"  x_{split}.shape: {tuple(x.shape)}"
                )
            if x.dtype != self.x_train.dtype:
                raise ValueError(
                    f"x_{split}.dtype={x.dtype} differs from x_train.dtype={self.x_train.dtype}"
                )
            if y is None:
                continue
            if y.ndim != 2 or y.shape[0] != x.shape[0] or y.shape[1] != self.y_train.shape[1]:
                raise ValueError(
                    f"y_{split} must be (N_{split}, O) = ({x.shape[0]}, {self.y_train.shape[1]}):\n"
                    f"  x_{split}.shape: {tuple(x.shape)}\n"
                    f"  y_{split}.shape: {tuple(y.shape)}"
                )
            if self.x_train.is_floating_point() and y.dtype != self.x_train.dtype:
                raise ValueError(
                    f"y_{split}.dtype={y.dtype} differs from x_train.dtype={self.x_train.dtype}"
                )
            if not y.is_floating_point() or y.dtype != self.y_train.dtype:
                raise ValueError(
                    f"y_{split}.dtype={y.dtype} must be floating and equal y_train.dtype="
                    f"{self.y_train.dtype}"
                )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input: ``(d_in,)`` for vectors, ``(C, H, W)`` for images."""
        return tuple(self.x_train.shape[1:])

    @property
    def d_in(self) -> int:
        """The number of input features (C·H·W for images)."""
        return math.prod(self.input_shape)

    @property
    def d_out(self) -> int:
        """The number of outputs O (the width of the targets)."""
        return int(self.y_train.shape[1])

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Dataset:
        """Returns a copy with every tensor moved to ``device`` and/or cast to ``dtype``.

        Args:
            device: the target device; None keeps the current one.
            dtype: a floating dtype for inputs and targets (integer token ids keep theirs);
                None keeps the current one.

        Returns:
            A new Dataset; ``meta`` is shared, not copied.
        """

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return replace(
            self,
            x_train=move(self.x_train),
            y_train=move(self.y_train),
            x_test=move(self.x_test),
            y_test=move(self.y_test),
            x_probe=move(self.x_probe),
            y_probe=move(self.y_probe),
        )

    def __repr__(self) -> str:
        def shape(t: torch.Tensor | None) -> str:
            return "None" if t is None else str(tuple(t.shape))

        return (
            f"Dataset(name={self.name!r}, x_train={shape(self.x_train)}, "
            f"y_train={shape(self.y_train)}, x_test={shape(self.x_test)}, "
            f"x_probe={shape(self.x_probe)}, n_classes={self.n_classes}, "
            f"dtype={self.x_train.dtype})"
        )


# --------------------------------------------------------------------------------------------
# The front door
# --------------------------------------------------------------------------------------------


def load_dataset(
    kind: DatasetKind,
    *,
    n_train: int = 256,
    n_test: int | None = 256,
    n_probe: int = 128,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float32,
    **kw: Any,
) -> Dataset:
    """Returns a :class:`Dataset` of the given kind, drawn deterministically from ``seed``.

    Kinds and their extra keyword arguments:

    ``"digits"``: scikit-learn's 1797 handwritten digits (8x8, 10 classes; ships with
    scikit-learn, no network). Train, probe and test sets are disjoint slices of one random
    permutation (in that order), so the probe set never meets the training set.

    - ``as_images=False``: inputs (N, 64); True gives (N, 1, 8, 8) for CNNs.
    - ``standardize=True``: statistics from the training split only. True means per feature
      (each pixel) for vectors and per channel for images; ``"feature"``, ``"channel"`` or
      False choose explicitly. A feature constant on the training split (std below 1e-8, e.g.
      the always-blank corner pixels) is centered but not scaled.
    - ``center_targets=False``: one-hot targets (1 for the class, 0 elsewhere), O = 10; True
      subtracts 1/10 (1 − 1/O for the class, −1/O elsewhere), so each target row sums to 0.

    ``"synthetic"``: teacher-student regression, x ~ N(0, I_d_in), y = teacher(x).

    - ``d_in=64``, ``d_out=1``.
    - ``teacher="linear"``: y = W x with W (d_out, d_in) Gaussian with unit-norm rows, so
      every output has unit variance over x. ``"nonlinear"``: a random two-layer network
      y = c · a φ(W1 x) / sqrt(k), W1 (k, d_in) with unit-norm rows, a (d_out, k) standard
      Gaussian, c = 1 / sqrt(E φ(z)²) for z ~ N(0, 1), so E y² = 1 per output on average
      over the teacher's weights (a given ReLU teacher can sit noticeably off 1).
    - ``activation="tanh"`` (or ``"relu"``): φ of the nonlinear teacher.
    - ``teacher_width=128``: k, the hidden width of the nonlinear teacher.
    - ``noise=0.0``: std of Gaussian label noise added to ``y_train`` only; ``y_test`` and
      ``y_probe`` stay noiseless teacher outputs.
    - ``teacher_seed=None``: seed of the teacher weights (None: ``seed``), so a sweep can fix
      the teacher and vary the sample, or the reverse.

    ``"cifar10"``: CIFAR-10 from a local directory in one of the official formats, the
    binary version (``data_batch_1.bin`` … ``data_batch_5.bin``, ``test_batch.bin``) or the
    python version (``data_batch_1`` … ``data_batch_5``, ``test_batch``). ``n_train`` and
    ``n_probe`` are disjoint random subsets of the 50000 training images, ``n_test`` a random
    subset of the 10000 test images (None: all of them, in file order).

    - ``data_dir``: the directory holding the files, or its parent holding
      ``cifar-10-batches-bin`` / ``cifar-10-batches-py`` (binary wins when both exist).
    - ``as_images=True``: inputs (N, 3, 32, 32), pixels / 255; False gives (N, 3072).
    - ``standardize=True``: per-channel mean and std of the training subset (``"feature"``:
      per pixel; False: pixels stay in [0, 1]).
    - ``center_targets=False``: as for digits.

    ``"chars"``: next-character prediction on English-like text generated by a small
    probabilistic grammar (``_SENTENCE``; no download): vocabulary V = 28 (space, a–z, '.'),
    one text per ``seed`` cut into consecutive windows of ``seq_len + 1`` characters; train,
    probe and test windows are disjoint. Inputs are token ids (N, T) int64; targets the one-hot
    next character at every position, flattened position-major to (N, T·V), the shape
    `rn.models.Transformer` returns, so the MSE loop trains a language model unchanged;
    ``n_classes`` = V.

    - ``seq_len=32``: T.

    ``"text"``: next-token prediction on the user's UTF-8 text files (WikiText format: one
    article per line, tokens separated by spaces), in the ``"chars"`` contract: x (N, T) int64
    token ids, y the one-hot next token flattened to (N, T·V), ``n_classes`` = V. The
    vocabulary is built from ``path`` (the training text) alone: id 0 is ``"<unk>"``, then the
    tokens in sorted order; a test token that ``path`` lacks reads as ``"<unk>"``. Each file is
    cut into consecutive, non-overlapping windows of ``seq_len + 1`` tokens, and ``seed``
    draws which windows go to each split (so no token is in two splits of one file).

    - ``path``: the training text. Train and probe windows are disjoint windows of it.
    - ``test_path=None``: the test text (e.g. ``wiki.test.tokens``); None holds out further
      windows of ``path`` (``n_test=None``: all the windows left).
    - ``tokenizer="char"``: every character is a token (newlines included); ``"word"``:
      whitespace-separated words (WikiText already writes rare words as ``<unk>``).
    - ``seq_len=32``: T.
    - ``max_vocab=None``: keep the ``max_vocab - 1`` most frequent tokens of ``path`` (ties
      by sorted order) and read the rest as ``"<unk>"``; None keeps them all. Needed for word
      vocabularies: one-hot targets above 2 GiB are refused.

    Args:
        kind: "digits", "synthetic", "cifar10", "chars" or "text".
        n_train: training points, at least 1.
        n_test: test points, at least 0; None takes every point not used for training or
            probing (digits) or the whole test split (cifar10); not allowed for synthetic data.
        n_probe: probe points, at least 0, drawn from points outside the training set.
        seed: integer in [0, 2**63), fixes the split (and the teacher, unless ``teacher_seed``).
        dtype: floating dtype of inputs and targets (a torch dtype or its name, "float64").
        **kw: the kind's extra arguments listed above.

    Returns:
        A Dataset of CPU tensors; x (N, d_in) or (N, C, H, W), y (N, O).

    Raises:
        ValueError: unknown kind, a size or argument outside its range (the message names the
            field, the value and the allowed range), a corrupt CIFAR-10 file, or a text file
            that is empty, not UTF-8 or too short for the windows asked for (the message names
            the file and what it holds).
        TypeError: a keyword argument that the kind does not take, or a non-integer size.
        FileNotFoundError: the CIFAR-10 files are not in ``data_dir`` (the message lists the
            files expected in both formats), or a text file does not exist.
        pickle.UnpicklingError: a CIFAR-10 python batch references anything but numpy arrays.

    Example:
        >>> ds = load_dataset("digits", n_train=32, n_test=16, n_probe=8, seed=1)
        >>> tuple(ds.x_train.shape), tuple(ds.y_train.shape), ds.n_classes
        ((32, 64), (32, 10), 10)
    """
    sizes = _checked_arguments(kind, n_train, n_test, n_probe, seed, kw)
    return _LOADERS[kind](**sizes, dtype=_resolve_dtype(dtype), **kw)


def check_dataset(
    kind: DatasetKind,
    *,
    n_train: int = 256,
    n_test: int | None = 256,
    n_probe: int = 128,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float32,
    **kw: Any,
) -> None:
    """Raises what :func:`load_dataset` would raise about its source, without building tensors.

    Sweep specs call it when they are validated, so a missing file or a too short text fails
    the spec before any run is stored. It checks the arguments as ``load_dataset`` does, and:

    - ``"cifar10"``: ``data_dir`` holds a complete set of files of one official format; for
      the binary format also the record sizes and that ``n_train + n_probe`` and ``n_test``
      fit the records (the python format's pickles are counted when loaded).
    - ``"text"``: each file exists, is UTF-8 and holds enough windows; the vocabulary and the
      one-hot targets fit (the file is read and tokenized once, then cached while unchanged).
    - other kinds: the arguments only.

    Args:
        kind, n_train, n_test, n_probe, seed, dtype, **kw: as for :func:`load_dataset`.

    Raises:
        ValueError, TypeError, FileNotFoundError: as :func:`load_dataset`.
    """
    sizes = _checked_arguments(kind, n_train, n_test, n_probe, seed, kw)
    bound = inspect.signature(_LOADERS[kind]).bind(**sizes, dtype=_resolve_dtype(dtype), **kw)
    bound.apply_defaults()
    args = bound.arguments  # every argument of the kind's loader, defaults filled in
    if kind == "cifar10":
        _standardize_mode(args["standardize"], default="channel")
        root, fmt = _cifar10_dir(args["data_dir"])
        if fmt == "bin":  # counting the python format's records means unpickling them
            train, test = _cifar10_records(root, fmt)
            _check_pool_sizes("cifar10", len(train), n_train, n_probe, n_test, len(test))
    elif kind == "text":
        _text_windows(**args)


def _checked_arguments(
    kind: str, n_train: Any, n_test: Any, n_probe: Any, seed: Any, kw: Mapping[str, Any]
) -> dict[str, Any]:
    """The common sizes, checked, as ints; refuses an unknown kind or keyword argument."""
    if kind not in _LOADERS:
        allowed = ", ".join(repr(k) for k in get_args(DatasetKind))
        raise ValueError(f"kind={kind!r} is not a data set kind; allowed: {allowed}")
    _check_int("n_train", n_train, low=1)
    _check_int("n_probe", n_probe, low=0)
    if n_test is not None:
        _check_int("n_test", n_test, low=0)
    _check_int("seed", seed, low=0, high=2**63 - 1)
    params = inspect.signature(_LOADERS[kind]).parameters
    extras = [name for name in params if name not in _COMMON]
    unknown = sorted(set(kw) - set(extras))
    if unknown:
        raise TypeError(
            f"load_dataset(kind={kind!r}) got unexpected keyword argument(s) "
            f"{', '.join(unknown)}; {kind} takes {', '.join(extras)}"
        )
    return {
        "n_train": int(n_train),
        "n_test": None if n_test is None else int(n_test),
        "n_probe": int(n_probe),
        "seed": int(seed),
    }


_COMMON = ("n_train", "n_test", "n_probe", "seed", "dtype")


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def _load_digits(
    *,
    n_train: int,
    n_test: int | None,
    n_probe: int,
    seed: int,
    dtype: torch.dtype,
    as_images: bool = False,
    standardize: Standardize = True,
    center_targets: bool = False,
) -> Dataset:
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)  # (1797, 64) in [0, 16], (1797,)
    n_all = len(labels)
    n_test = _check_pool_sizes("digits", n_all, n_train, n_probe, n_test)
    mode = _standardize_mode(standardize, default="channel" if as_images else "feature")

    perm = torch.randperm(n_all, generator=_generator(seed, "split"))
    idx_train = perm[:n_train]
    idx_probe = perm[n_train : n_train + n_probe]
    idx_test = perm[n_train + n_probe : n_train + n_probe + n_test]

    x = torch.from_numpy(pixels).to(torch.float64)  # (N, 64)
    if as_images:
        x = x.reshape(-1, 1, 8, 8)  # (N, 1, 8, 8)
    y = _one_hot(torch.from_numpy(labels), 10, center_targets, torch.float64)  # (N, 10)
    x_train, (x_probe, x_test), stats = _standardize(
        x[idx_train], (x[idx_probe], x[idx_test]), mode, n_channels=1
    )
    return Dataset(
        x_train=x_train.to(dtype),
        y_train=y[idx_train].to(dtype),
        x_test=x_test.to(dtype),
        y_test=y[idx_test].to(dtype),
        x_probe=x_probe.to(dtype),
        y_probe=y[idx_probe].to(dtype),
        name="digits",
        n_classes=10,
        meta={
            "train_index": idx_train,
            "probe_index": idx_probe,
            "test_index": idx_test,
            "center_targets": bool(center_targets),
            **stats,
        },
    )


# --------------------------------------------------------------------------------------------
# synthetic teachers
# --------------------------------------------------------------------------------------------


def _load_synthetic(
    *,
    n_train: int,
    n_test: int | None,
    n_probe: int,
    seed: int,
    dtype: torch.dtype,
    d_in: int = 64,
    d_out: int = 1,
    teacher: Literal["linear", "nonlinear"] = "linear",
    activation: Literal["tanh", "relu"] = "tanh",
    teacher_width: int = 128,
    noise: float = 0.0,
    teacher_seed: int | None = None,
) -> Dataset:
    if n_test is None:
        raise ValueError(
            "n_test=None (every remaining point) has no meaning for kind='synthetic', which "
            "draws fresh points; pass an integer n_test >= 0"
        )
    _check_int("d_in", d_in, low=1)
    _check_int("d_out", d_out, low=1)
    _check_int("teacher_width", teacher_width, low=1)
    if teacher not in ("linear", "nonlinear"):
        raise ValueError(f"teacher={teacher!r} is not a teacher; allowed: 'linear', 'nonlinear'")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not allowed; allowed: 'tanh', 'relu'")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):
        raise TypeError(f"noise must be a real number, got {type(noise).__name__}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise} is outside [0, inf): it is the std of the label noise")
    if teacher_seed is None:
        teacher_seed = seed
    _check_int("teacher_seed", teacher_seed, low=0, high=2**63 - 1)

    # Each piece draws from its own stream, so the test and probe sets stay the same when
    # n_train changes, and the teacher stays the same when only `seed` changes under a fixed
    # `teacher_seed`.
    g_teacher = _generator(int(teacher_seed), "teacher")
    f64 = torch.float64
    meta: dict[str, Any] = {"teacher": teacher}
    if teacher == "linear":
        w = torch.randn(d_out, d_in, generator=g_teacher, dtype=f64)  # (O, d_in)
        w = w / w.norm(dim=1, keepdim=True)
        meta["teacher_w"] = w

        def f_teacher(x: torch.Tensor) -> torch.Tensor:
            return x @ w.T  # (N, O)

        name = "synthetic-linear"
    else:
        phi = _ACTIVATIONS[activation]
        w1 = torch.randn(teacher_width, d_in, generator=g_teacher, dtype=f64)  # (k, d_in)
        w1 = w1 / w1.norm(dim=1, keepdim=True)
        a = torch.randn(d_out, teacher_width, generator=g_teacher, dtype=f64)  # (O, k)
        c = 1.0 / math.sqrt(_second_moment(activation))
        meta.update(teacher_w1=w1, teacher_a=a, activation=activation, teacher_scale=c)

        def f_teacher(x: torch.Tensor) -> torch.Tensor:
            return c * phi(x @ w1.T) @ a.T / math.sqrt(teacher_width)  # (N, O)

        name = f"synthetic-nonlinear-{activation}"

    def draw(n: int, stream: str) -> torch.Tensor:
        return torch.randn(n, d_in, generator=_generator(seed, stream), dtype=f64)  # (n, d_in)

    x_train, x_test, x_probe = draw(n_train, "train"), draw(n_test, "test"), draw(n_probe, "probe")
    y_train = f_teacher(x_train)
    if noise > 0:
        y_train = y_train + noise * torch.randn(
            y_train.shape, generator=_generator(seed, "noise"), dtype=f64
        )
    meta["noise"] = float(noise)
    return Dataset(
        x_train=x_train.to(dtype),
        y_train=y_train.to(dtype),
        x_test=x_test.to(dtype),
        y_test=f_teacher(x_test).to(dtype),
        x_probe=x_probe.to(dtype),
        y_probe=f_teacher(x_probe).to(dtype),
        name=name,
        n_classes=None,
        meta=meta,
    )


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def _second_moment(activation: str) -> float:
    """Returns E φ(z)² for z ~ N(0, 1): 1/2 for ReLU, Gauss-Hermite quadrature for tanh."""
    if activation == "relu":
        return 0.5
    z, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(w * np.tanh(z) ** 2) / math.sqrt(2 * math.pi))


# --------------------------------------------------------------------------------------------
# chars: a generated English-like corpus
# --------------------------------------------------------------------------------------------

CHARS_VOCAB = " abcdefghijklmnopqrstuvwxyz."

# A sentence is a sequence of slots; each slot draws one word uniformly (an empty word skips it).
_SENTENCE: tuple[tuple[str, ...], ...] = (
    ("the", "a", "one", "every", "that"),
    ("", "", "small", "old", "red", "quiet", "happy", "clever", "brown"),
    ("cat", "dog", "bird", "child", "farmer", "teacher", "river", "king", "horse", "girl"),
    ("sees", "likes", "finds", "follows", "helps", "watches", "carries", "loves", "hears"),
    ("the", "a", "his", "her", "our"),
    ("", "", "green", "little", "strange", "wooden", "bright"),
    ("house", "ball", "tree", "book", "song", "garden", "boat", "apple", "stone", "road"),
    ("", "", "", "today", "again", "slowly", "at night", "in the morning", "near the hill"),
)


def _chars_text(n_chars: int, seed: int) -> str:
    """At least `n_chars` characters of sentences drawn from `_SENTENCE`, from `seed`."""
    rng = np.random.default_rng([seed, 3])
    parts: list[str] = []
    length = 0
    while length < n_chars:
        words = [slot[rng.integers(len(slot))] for slot in _SENTENCE]
        sentence = " ".join(w for w in words if w) + ". "
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)


def _load_chars(
    *,
    n_train: int,
    n_test: int | None,
    n_probe: int,
    seed: int,
    dtype: torch.dtype,
    seq_len: int = 32,
) -> Dataset:
    if n_test is None:
        raise ValueError("n_test=None has no meaning for kind='chars'; pass an integer n_test >= 0")
    _check_int("seq_len", seq_len, low=1, high=4096)
    window = seq_len + 1
    n_windows = n_train + n_probe + n_test
    text = _chars_text(n_windows * window, seed)
    ids = torch.tensor([CHARS_VOCAB.index(c) for c in text[: n_windows * window]])
    windows = ids.view(n_windows, window)  # consecutive, non-overlapping: splits are disjoint
    vocab = len(CHARS_VOCAB)
    x_train, y_train = _next_token_split(windows[:n_train], vocab, dtype)
    x_probe, y_probe = _next_token_split(windows[n_train : n_train + n_probe], vocab, dtype)
    x_test, y_test = _next_token_split(windows[n_train + n_probe :], vocab, dtype)
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        x_probe=x_probe,
        y_probe=y_probe,
        name="chars",
        n_classes=vocab,
        meta={"vocab": CHARS_VOCAB, "seq_len": seq_len},
    )


def _next_token_split(
    windows: torch.Tensor, vocab_size: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and one-hot next-token targets of (N, T + 1) token windows.

    Returns x (N, T) int64 ids and y (N, T·V), position-major: the shape
    `rn.models.Transformer` returns.
    """
    n, t = windows.shape[0], windows.shape[1] - 1
    y = torch.nn.functional.one_hot(windows[:, 1:], vocab_size).to(dtype)  # (N, T, V)
    return windows[:, :-1].contiguous(), y.reshape(n, t * vocab_size)  # (N, T), (N, T·V)


# --------------------------------------------------------------------------------------------
# text: a user's corpus (WikiText format), next-token prediction
# --------------------------------------------------------------------------------------------

UNK = "<unk>"  # id 0 of every text vocabulary; WikiText's own unknown-word token
# One-hot targets (N, T·V) above this many bytes are refused before they are built: 2 GiB is
# WikiText-2's word vocabulary (33k) at N = 256 windows of T = 64, already too slow to train.
_MAX_TARGET_BYTES = 2**31


@dataclass(frozen=True)
class _Corpus:
    """A tokenized text file (and its test file), in the training file's vocabulary."""

    vocab: tuple[str, ...]  # id -> token; vocab[0] is UNK
    train: np.ndarray  # (L,) int64 token ids of `path`
    test: np.ndarray | None  # (L_test,) int64 token ids of `test_path`, UNK where unseen
    n_unknown_test: int  # tokens of `test_path` mapped to UNK because `path` lacks them


@dataclass(frozen=True)
class _TextWindows:
    """Which (seq_len + 1)-token windows of the corpus go to each split."""

    corpus: _Corpus
    window: int  # seq_len + 1
    train: np.ndarray  # (n_train,) window indices into corpus.train
    probe: np.ndarray  # (n_probe,) window indices into corpus.train
    test: np.ndarray  # (n_test,) window indices into corpus.test (None: into corpus.train)


def _load_text(
    *,
    n_train: int,
    n_test: int | None,
    n_probe: int,
    seed: int,
    dtype: torch.dtype,
    path: str | os.PathLike[str] | None = None,
    test_path: str | os.PathLike[str] | None = None,
    tokenizer: Literal["char", "word"] = "char",
    seq_len: int = 32,
    max_vocab: int | None = None,
) -> Dataset:
    split = _text_windows(
        n_train=n_train,
        n_test=n_test,
        n_probe=n_probe,
        seed=seed,
        dtype=dtype,
        path=path,
        test_path=test_path,
        tokenizer=tokenizer,
        seq_len=seq_len,
        max_vocab=max_vocab,
    )
    corpus, vocab = split.corpus, len(split.corpus.vocab)

    def take(ids: np.ndarray, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        windows = ids[: ids.size // split.window * split.window].reshape(-1, split.window)
        return _next_token_split(torch.from_numpy(windows[idx]), vocab, dtype)  # (N, T), (N, T·V)

    test_ids = corpus.train if corpus.test is None else corpus.test  # held-out windows of path
    x_train, y_train = take(corpus.train, split.train)
    x_probe, y_probe = take(corpus.train, split.probe)
    x_test, y_test = take(test_ids, split.test)
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        x_probe=x_probe,
        y_probe=y_probe,
        name="text",
        n_classes=vocab,
        meta={
            "path": str(path),
            "test_path": None if test_path is None else str(test_path),
            "tokenizer": tokenizer,
            "vocab": corpus.vocab,
            "seq_len": seq_len,
            "n_tokens": int(corpus.train.size),
            "n_test_tokens": int(test_ids.size),
            "unknown_test_fraction": (
                corpus.n_unknown_test / corpus.test.size
                if corpus.test is not None and corpus.test.size
                else 0.0
            ),
            "train_index": torch.from_numpy(split.train),
            "probe_index": torch.from_numpy(split.probe),
            "test_index": torch.from_numpy(split.test),
        },
    )


def _text_windows(
    *,
    n_train: int,
    n_test: int | None,
    n_probe: int,
    seed: int,
    dtype: torch.dtype,
    path: str | os.PathLike[str] | None,
    test_path: str | os.PathLike[str] | None,
    tokenizer: str,
    seq_len: int,
    max_vocab: int | None,
) -> _TextWindows:
    """Checks a text kind's arguments against its files; returns the windows of each split."""
    if path is None:
        raise ValueError(
            "kind='text' needs path=<a UTF-8 text file, e.g. WikiText's wiki.train.tokens>"
        )
    if tokenizer not in ("char", "word"):
        raise ValueError(f"tokenizer={tokenizer!r} is not a tokenizer; allowed: 'char', 'word'")
    _check_int("seq_len", seq_len, low=1, high=4096)
    if max_vocab is not None:
        _check_int("max_vocab", max_vocab, low=2)
    corpus = _corpus(
        Path(path).expanduser(),
        None if test_path is None else Path(test_path).expanduser(),
        tokenizer,
        max_vocab,
    )
    window = seq_len + 1
    n_windows = corpus.train.size // window
    held_out = (n_test or 0) if corpus.test is None else 0  # test windows taken from path
    need = n_train + n_probe + held_out
    if n_windows < need:
        held = f" + n_test={n_test}" if held_out else ""
        raise ValueError(
            f"path='{path}' is too short: it holds {corpus.train.size} {tokenizer} tokens, "
            f"{n_windows} windows of seq_len + 1 = {window} tokens, and the splits need {need} "
            f"(n_train={n_train} + n_probe={n_probe}{held}); give a longer file or smaller "
            f"sizes or seq_len"
        )
    perm = torch.randperm(n_windows, generator=_generator(seed, "split")).numpy()
    train, probe = perm[:n_train], perm[n_train : n_train + n_probe]
    if corpus.test is None:
        rest = perm[n_train + n_probe :]
        test = rest if n_test is None else rest[:n_test]
    else:
        n_test_windows = corpus.test.size // window
        wanted = max(n_test if n_test is not None else n_test_windows, 1)
        if n_test_windows < wanted:
            raise ValueError(
                f"test_path='{test_path}' is too short: it holds {corpus.test.size} {tokenizer} "
                f"tokens, {n_test_windows} windows of seq_len + 1 = {window} tokens, and "
                f"n_test={n_test} needs {wanted}; give a longer file or a smaller n_test or "
                f"seq_len"
            )
        n_test = n_test_windows if n_test is None else n_test
        if n_test == n_test_windows:
            test = np.arange(n_test_windows)
        else:
            g = _generator(seed, "test")
            test = torch.randperm(n_test_windows, generator=g).numpy()[:n_test]
    n_rows = len(train) + len(probe) + len(test)
    size = n_rows * seq_len * len(corpus.vocab) * torch.empty((), dtype=dtype).element_size()
    if size > _MAX_TARGET_BYTES:
        raise ValueError(
            f"the one-hot targets of path='{path}' would take {size / 2**30:.1f} GiB "
            f"({n_rows} windows x seq_len={seq_len} x {len(corpus.vocab)} tokens), more than "
            f"{_MAX_TARGET_BYTES / 2**30:.0f} GiB; pass max_vocab (e.g. max_vocab=1024 keeps "
            f"the most frequent tokens, the rest read as {UNK}) or smaller sizes or seq_len"
        )
    return _TextWindows(corpus, window, train, probe, test)


def _corpus(path: Path, test_path: Path | None, tokenizer: str, max_vocab: int | None) -> _Corpus:
    """The tokenized files; read once while their size and modification time are unchanged."""
    keys = (
        _file_key(path, "path"),
        None if test_path is None else _file_key(test_path, "test_path"),
    )
    return _corpus_cached(keys, tokenizer, max_vocab)


def _file_key(path: Path, field: str) -> tuple[str, int, int]:
    if not path.exists():
        raise FileNotFoundError(
            f"{field}='{path}' does not exist; text data needs a UTF-8 text file (WikiText "
            f"format: one article line per line, tokens separated by spaces)"
        )
    if not path.is_file():
        raise ValueError(f"{field}='{path}' is not a file; text data needs a UTF-8 text file")
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _corpus_cached(
    keys: tuple[tuple[str, int, int], tuple[str, int, int] | None],
    tokenizer: str,
    max_vocab: int | None,
) -> _Corpus:
    (path, _, _), test_key = keys
    tokens = _tokenize(_read_text(Path(path), "path"), tokenizer)
    counts = collections.Counter(tokens)
    if not counts:
        raise ValueError(
            f"path='{path}' holds no {tokenizer} tokens (only whitespace); text data needs at "
            f"least one window of seq_len + 1 tokens"
        )
    counts.pop(UNK, None)  # UNK is always id 0
    kept = list(counts)
    if max_vocab is not None and len(kept) > max_vocab - 1:
        kept = sorted(kept, key=lambda t: (-counts[t], t))[: max_vocab - 1]
    vocab = (UNK, *sorted(kept))
    index = {token: i for i, token in enumerate(vocab)}

    def ids(seq: Sequence[str]) -> np.ndarray:
        return np.fromiter((index.get(t, 0) for t in seq), dtype=np.int64, count=len(seq))

    test, unknown = None, 0
    if test_key is not None:
        test_tokens = _tokenize(_read_text(Path(test_key[0]), "test_path"), tokenizer)
        test = ids(test_tokens)
        unknown = sum(1 for t in test_tokens if t not in index and t != UNK)
    return _Corpus(vocab, ids(tokens), test, unknown)


def _read_text(path: Path, field: str) -> str:
    raw = path.read_bytes()
    if not raw:
        raise ValueError(
            f"{field}='{path}' is empty; text data needs at least one window of seq_len + 1 tokens"
        )
    try:
        text = raw.decode("utf-8-sig")  # a leading byte-order mark is not text
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{field}='{path}' is not UTF-8 text: byte {err.start} "
            f"({raw[err.start : err.start + 1]!r}): {err.reason}; re-encode the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n")


def _tokenize(text: str, tokenizer: str) -> Sequence[str]:
    """Every character (``"char"``), or the whitespace-separated words (``"word"``)."""
    return text if tokenizer == "char" else text.split()


def check_vocabulary(data: Dataset, vocab_size: int) -> None:
    """Checks that a model with ``vocab_size`` token embeddings reads every token id of ``data``.

    Call it before training a token model on a data set: an id ≥ ``vocab_size`` would
    otherwise fail inside the embedding, after the run started (an IndexError on the CPU, a
    device-side assert on CUDA).

    Args:
        data: a data set of token ids (``"chars"``, ``"text"``): x (N, T) integers.
        vocab_size: the model's number of token embeddings, V_model ≥ 1.

    Raises:
        TypeError: ``data`` holds no token ids (floating inputs), or ``vocab_size`` is not an
            integer.
        ValueError: an id of some split lies outside [0, vocab_size), or the targets are one-hot
            over more classes than ``vocab_size``.

    Example:
        >>> ds = load_dataset("chars", n_train=4, n_test=2, n_probe=2, seq_len=8)
        >>> check_vocabulary(ds, 28)  # the built-in vocabulary: space, a-z, '.'
    """
    _check_int("vocab_size", vocab_size, low=1)
    if data.x_train.is_floating_point():
        raise TypeError(
            f"data {data.name!r} holds {data.x_train.dtype} inputs, not token ids: "
            f"check_vocabulary applies to token data (kind 'chars' or 'text')"
        )
    splits = {"x_train": data.x_train, "x_probe": data.x_probe, "x_test": data.x_test}
    for split, x in splits.items():
        if x.numel() == 0:
            continue
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"data {data.name!r} has token ids in [{low}, {high}] ({split}), outside the "
                f"model's vocabulary [0, {vocab_size}); build the model with vocab_size >= "
                f"{data.n_classes or high + 1}, or limit the data's vocabulary (kind 'text': "
                f"max_vocab={vocab_size})"
            )
    if data.n_classes is not None and data.n_classes > vocab_size:
        raise ValueError(
            f"data {data.name!r} has one-hot targets over {data.n_classes} tokens, more than "
            f"the model's vocab_size={vocab_size}; build the model with vocab_size >= "
            f"{data.n_classes}, or limit the data's vocabulary (kind 'text': "
            f"max_vocab={vocab_size})"
        )


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------


def _load_cifar10(
    *,
    n_train: int,
    n_test: int | None,
    n_probe: int,
    seed: int,
    dtype: torch.dtype,
    data_dir: str | os.PathLike[str] | None = None,
    as_images: bool = True,
    standardize: Standardize = True,
    center_targets: bool = False,
) -> Dataset:
    mode = _standardize_mode(standardize, default="channel")
    root, fmt = _cifar10_dir(data_dir)
    train, test = _cifar10_records(root, fmt)
    n_test = _check_pool_sizes("cifar10", len(train), n_train, n_probe, n_test, len(test))
    perm = torch.randperm(len(train), generator=_generator(seed, "split"))
    idx_train = perm[:n_train]
    idx_probe = perm[n_train : n_train + n_probe]
    if n_test == len(test):
        idx_test = torch.arange(len(test))
    else:
        idx_test = torch.randperm(len(test), generator=_generator(seed, "test"))[:n_test]

    work = torch.float64 if dtype == torch.float64 else torch.float32
    shape = (3, 32, 32) if as_images else (3 * 32 * 32,)

    def take(records: _Records, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, labels = records.take(idx.numpy())  # (k, 3072) uint8, (k,) int64
        x = torch.from_numpy(pixels).to(work).div_(255.0).reshape(-1, *shape)  # (k, 3, 32, 32)
        y = _one_hot(torch.from_numpy(labels), 10, center_targets, work)  # (k, 10)
        return x, y

    (x_train, y_train), (x_probe, y_probe) = take(train, idx_train), take(train, idx_probe)
    x_test, y_test = take(test, idx_test)
    x_train, (x_probe, x_test), stats = _standardize(x_train, (x_probe, x_test), mode, n_channels=3)
    return Dataset(
        x_train=x_train.to(dtype),
        y_train=y_train.to(dtype),
        x_test=x_test.to(dtype),
        y_test=y_test.to(dtype),
        x_probe=x_probe.to(dtype),
        y_probe=y_probe.to(dtype),
        name="cifar10",
        n_classes=10,
        meta={
            "data_dir": str(root),
            "format": fmt,
            "classes": CIFAR10_CLASSES,
            "train_index": idx_train,
            "probe_index": idx_probe,
            "test_index": idx_test,
            "center_targets": bool(center_targets),
            **stats,
        },
    )


def _cifar10_dir(data_dir: str | os.PathLike[str] | None) -> tuple[Path, Literal["bin", "py"]]:
    """Returns the directory holding a complete set of CIFAR-10 files and its format."""
    if data_dir is None:
        raise ValueError(
            "kind='cifar10' needs data_dir=<directory with the CIFAR-10 batches, or its parent "
            f"holding cifar-10-batches-bin or cifar-10-batches-py>; download from {_CIFAR_URL}"
        )
    return _find_cifar10(Path(data_dir).expanduser())


def _cifar10_records(root: Path, fmt: Literal["bin", "py"]) -> tuple[_Records, _Records]:
    """The training and test records of the files in ``root`` (binary: memory-mapped)."""
    if fmt == "bin":
        train: _Records = _BinaryRecords([root / f for f in _CIFAR_BIN_FILES[:5]])
        return train, _BinaryRecords([root / _CIFAR_BIN_FILES[5]])
    train = _ArrayRecords.from_pickles([root / f for f in _CIFAR_PY_FILES[:5]])
    return train, _ArrayRecords.from_pickles([root / _CIFAR_PY_FILES[5]])


def _find_cifar10(data_dir: Path) -> tuple[Path, Literal["bin", "py"]]:
    """Returns the directory holding a complete set of CIFAR-10 files and its format."""
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 data_dir='{data_dir}' is not a directory. {_cifar_expected(data_dir)}"
        )
    candidates: list[tuple[Path, Literal["bin", "py"], tuple[str, ...]]] = [
        (data_dir, "bin", _CIFAR_BIN_FILES),
        (data_dir, "py", _CIFAR_PY_FILES),
        (data_dir / "cifar-10-batches-bin", "bin", _CIFAR_BIN_FILES),
        (data_dir / "cifar-10-batches-py", "py", _CIFAR_PY_FILES),
    ]
    partial: list[str] = []
    for root, fmt, files in candidates:
        missing = [f for f in files if not (root / f).is_file()]
        if not missing:
            return root, fmt
        if len(missing) < len(files):
            partial.append(f"'{root}' has some {fmt} files but lacks {', '.join(missing)}")
    found = (" Found an incomplete copy: " + "; ".join(partial) + ".") if partial else ""
    raise FileNotFoundError(
        f"CIFAR-10 not found in data_dir='{data_dir}'.{found} {_cifar_expected(data_dir)}"
    )


def _cifar_expected(data_dir: Path) -> str:
    return (
        f"Expected either the binary version ({', '.join(_CIFAR_BIN_FILES)}) in '{data_dir}' or "
        f"'{data_dir / 'cifar-10-batches-bin'}', or the python version "
        f"({', '.join(_CIFAR_PY_FILES)}) in '{data_dir}' or "
        f"'{data_dir / 'cifar-10-batches-py'}'. Download and extract cifar-10-binary.tar.gz or "
        f"cifar-10-python.tar.gz from {_CIFAR_URL}"
    )


class _Records:
    """Labelled CIFAR-10 records: ``take(indices)`` returns ((k, 3072) uint8, (k,) int64)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class _BinaryRecords(_Records):
    """Records of the binary version, memory-mapped: only the records drawn are read."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._maps: list[np.ndarray] = []
        for path in paths:
            size = path.stat().st_size
            if size % _CIFAR_RECORD:
                raise ValueError(
                    f"'{path}' has {size} bytes, not a multiple of {_CIFAR_RECORD} (1 label byte "
                    f"+ 3072 pixel bytes per record): not a CIFAR-10 binary batch"
                )
            n = size // _CIFAR_RECORD
            shape = (n, _CIFAR_RECORD)
            self._maps.append(
                np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
                if n
                else np.zeros(shape, np.uint8)
            )
        self._offsets = np.cumsum([0, *(m.shape[0] for m in self._maps)])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.empty((len(idx), _CIFAR_RECORD), np.uint8)
        file_of = np.searchsorted(self._offsets, idx, side="right") - 1
        for f, records in enumerate(self._maps):
            sel = file_of == f
            if sel.any():
                out[sel] = records[idx[sel] - self._offsets[f]]
                bad = out[sel, 0] > 9
                if bad.any():
                    raise ValueError(
                        f"'{self._paths[f]}' has label {int(out[sel, 0][bad][0])} outside "
                        f"[0, 9]: not a CIFAR-10 binary batch (CIFAR-100 files have 2 label "
                        f"bytes per record)"
                    )
        return out[:, 1:], out[:, 0].astype(np.int64)


class _ArrayRecords(_Records):
    """Records held in memory, read from the python version's pickles."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray) -> None:
        self._pixels = pixels  # (N, 3072) uint8
        self._labels = labels  # (N,) int64

    @classmethod
    def from_pickles(cls, paths: list[Path]) -> _ArrayRecords:
        batches = [_read_cifar_pickle(p) for p in paths]
        return cls(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))

    def __len__(self) -> int:
        return len(self._labels)

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._pixels[idx], self._labels[idx]


# The official batches were written by Python 2's cPickle: a dict of str keys, a uint8 array
# under 'data', lists of ints and str. Rebuilding the array needs numpy's reconstruction
# function, numpy.ndarray and numpy.dtype and nothing else; a pickle that names any other
# global is refused before anything runs. Re-pickled by Python 3 with numpy 2 (protocol 2-4),
# the reconstruction function is spelled numpy._core.multiarray._reconstruct; protocol 2 has no
# bytes opcode, so Python 3 writes each bytes object as _codecs.encode(text, "latin1"), read
# here by a function that does exactly that encoding and refuses any other codec.
_RECONSTRUCT = np.empty(0).__reduce__()[0]  # the public route to numpy's _reconstruct


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(
            f"it calls _codecs.encode with encoding {encoding!r}, and a CIFAR-10 python batch "
            f"pickled by Python 3 with protocol 2 encodes bytes as 'latin1' only"
        )
    return text.encode("latin1")


_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays, dicts, lists, bytes and str, and nothing else."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _PICKLE_GLOBALS)
            raise pickle.UnpicklingError(
                f"refusing to unpickle '{self._path}': it references the global "
                f"'{module}.{name}', and a CIFAR-10 python batch needs only numpy arrays "
                f"(allowed: {allowed}). This is not an official CIFAR-10 file; re-download it "
                f"from {_CIFAR_URL}"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to unpickle '{self._path}': it uses persistent ids, which no CIFAR-10 "
            f"python batch does"
        )


def _read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Returns ((N, 3072) uint8 pixels, (N,) int64 labels) of one python-version batch."""
    with open(path, "rb") as f:
        try:
            batch = _RestrictedUnpickler(f, path).load()
        except pickle.UnpicklingError as e:
            if str(path) in str(e):
                raise
            raise pickle.UnpicklingError(f"refusing to unpickle '{path}': {e}") from None
        except Exception as e:  # truncated or garbled files raise all sorts of errors
            raise ValueError(
                f"'{path}' is not a readable CIFAR-10 python batch: {type(e).__name__}: {e}"
            ) from e
    if not isinstance(batch, dict):
        raise ValueError(f"'{path}' holds a {type(batch).__name__}, not a CIFAR-10 batch dict")

    def get(key: str) -> Any:
        for k in (key.encode(), key):  # bytes keys when pickled by Python 2
            if k in batch:
                return batch[k]
        raise ValueError(f"'{path}' has no '{key}' entry; keys: {sorted(map(repr, batch))}")

    pixels = np.asarray(get("data"))
    labels = np.asarray(get("labels"))
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072:
        raise ValueError(
            f"'{path}': 'data' must be a (N, 3072) uint8 array, got {pixels.shape} {pixels.dtype}"
        )
    if labels.shape != (pixels.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"'{path}': 'labels' must be {pixels.shape[0]} integers, got shape {labels.shape} "
            f"of {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"'{path}': labels must lie in [0, 9], got {labels.min()}..{labels.max()}")
    return pixels, labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        upper = "inf)" if high is None else f"{high}]"
        raise ValueError(f"{name}={value} is outside [{low}, {upper}")


def _check_pool_sizes(
    name: str,
    n_pool: int,
    n_train: int,
    n_probe: int,
    n_test: int | None,
    n_test_pool: int | None = None,
) -> int:
    """Checks the sizes against the points available; returns n_test with None resolved.

    Train and probe come from one pool of ``n_pool`` points; the test set comes from the same
    pool's remainder when ``n_test_pool`` is None, else from its own pool of that size.
    """
    if n_train > n_pool:
        raise ValueError(
            f"n_train={n_train} is outside [1, {n_pool}]: {name} has {n_pool} training points"
        )
    if n_probe > n_pool - n_train:
        raise ValueError(
            f"n_probe={n_probe} is outside [0, {n_pool - n_train}]: the probe set is drawn from "
            f"the {n_pool} - n_train = {n_pool - n_train} {name} points outside the training set"
        )
    if n_test_pool is None:
        left = n_pool - n_train - n_probe
        where = f"the {left} {name} points left after n_train={n_train} and n_probe={n_probe}"
    else:
        left, where = n_test_pool, f"the {n_test_pool} points of the {name} test split"
    if n_test is None:
        return left
    if n_test > left:
        raise ValueError(
            f"n_test={n_test} is outside [0, {left}]: the test set is drawn from {where}"
        )
    return n_test


def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(
            f"dtype={dtype!r} is not a floating torch dtype; pass e.g. torch.float32 or 'float64'"
        )
    return resolved


def _standardize_mode(standardize: Standardize, *, default: str) -> str | None:
    if standardize is True:
        return default
    if standardize is False:
        return None
    if standardize in ("feature", "channel"):
        return standardize
    raise ValueError(
        f"standardize={standardize!r} is not allowed; allowed: True, False, 'feature', 'channel'"
    )


def _standardize(
    x_train: torch.Tensor, others: tuple[torch.Tensor, ...], mode: str | None, *, n_channels: int
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], dict[str, Any]]:
    """Standardizes every split with the training split's mean and std.

    ``mode="feature"``: one mean and std per input coordinate; ``"channel"``: one per channel
    (the leading input dimension for images, a split of the flat vector into ``n_channels``
    equal blocks otherwise). Stds below 1e-8 are replaced by 1 (center, don't scale).
    """
    if mode is None:
        return x_train, others, {"standardize": None}
    n = x_train.shape[0]
    groups = x_train.shape[1:].numel() if mode == "feature" else n_channels
    flat = x_train.reshape(n, groups, -1)  # (N, G, features per group)
    mean = flat.mean(dim=(0, 2))  # (G,)
    std = flat.std(dim=(0, 2), correction=0)  # (G,)
    std = torch.where(std > _STD_FLOOR, std, torch.ones_like(std))

    def apply(x: torch.Tensor) -> torch.Tensor:
        g = x.reshape(x.shape[0], groups, x[0].numel() // groups if len(x) else 0)
        return ((g - mean[:, None]) / std[:, None]).reshape(x.shape)

    return (
        apply(x_train),
        tuple(apply(x) for x in others),
        {
            "standardize": mode,
            "mean": mean,
            "std": std,
        },
    )


def _one_hot(
    labels: torch.Tensor, n_classes: int, center: bool, dtype: torch.dtype
) -> torch.Tensor:
    """Returns (N, C) one-hot rows, minus 1/C when ``center`` (rows then sum to 0)."""
    y = torch.nn.functional.one_hot(labels.long(), n_classes).to(dtype)
    return y - 1.0 / n_classes if center else y


def _generator(seed: int, stream: str) -> torch.Generator:
    """Returns a CPU generator for one named stream of ``seed`` (streams are independent)."""
    tag = int.from_bytes(stream.encode()[:8].ljust(8, b"\0"), "little")
    state = np.random.SeedSequence([seed, tag]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": _load_digits,
    "synthetic": _load_synthetic,
    "cifar10": _load_cifar10,
    "chars": _load_chars,
    "text": _load_text,
}

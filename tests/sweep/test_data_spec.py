"""The data section of sweep specs: one spec class per kind, strict, with its files checked."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from richness.data import _LOADERS, load_dataset
from richness.sweep import SpecError, parse_spec
from richness.sweep.spec import (
    CharsData,
    Cifar10Data,
    DataSpec,
    DigitsData,
    SweepSpec,
    SyntheticData,
    TextData,
)

BASE = {"widths": [8], "richness": [0.0], "optimizer": {"lr": 0.1}}
KINDS = {
    "digits": DigitsData,
    "synthetic": SyntheticData,
    "cifar10": Cifar10Data,
    "chars": CharsData,
    "text": TextData,
}
SIZES = {"n_train": 256, "n_test": 256, "n_probe": 128, "seed": 0}


def _spec(data: dict) -> SweepSpec:
    return parse_spec({**BASE, "data": data})


def _cifar_bin(root: Path, per_file: int = 3, skip: str | None = None) -> Path:
    """A tiny CIFAR-10 in the binary layout: 3073-byte records, label byte first."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin"]:
        if name != skip:
            records = rng.integers(0, 256, (per_file, 3073), dtype=np.uint8)
            records[:, 0] %= 10
            (root / name).write_bytes(records.tobytes())
    return root


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "wiki.train.tokens"
    text.write_text(" = Robert Boulter = \n Robert Boulter is an English actor . \n" * 200)
    return {"cifar": _cifar_bin(tmp_path / "cifar"), "text": text, "tmp": tmp_path}


def _valid(kind: str, files: dict[str, Path]) -> dict:
    extra = {"cifar10": {"data_dir": str(files["cifar"])}, "text": {"path": str(files["text"])}}
    sizes = {"n_train": 4, "n_test": 2, "n_probe": 2} if kind in ("cifar10", "text") else {}
    return {"kind": kind, **sizes, **extra.get(kind, {})}


def test_digits_is_the_default_and_dumps_as_before() -> None:
    assert SweepSpec.model_validate(BASE).data.model_dump() == {"kind": "digits", **SIZES}
    assert type(DataSpec()) is DigitsData and DataSpec().model_dump() == {"kind": "digits", **SIZES}
    spec = _spec({"n_train": 64, "as_images": True})  # no kind: digits
    assert spec.data.model_dump() == {**SIZES, "kind": "digits", "n_train": 64, "as_images": True}
    # A spec's data dumps its sizes and what it wrote, as the open DataSpec did: the hashes
    # of runs in older stores stay the same.
    written = {"kind": "chars", "n_train": 64, "n_test": 32, "n_probe": 32, "seq_len": 32}
    assert _spec(written).data.model_dump() == {**written, "seed": 0}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_validates_and_loads(kind: str, files) -> None:
    data = _spec(_valid(kind, files)).data
    assert isinstance(data, KINDS[kind]) and data.kind == kind
    assert DataSpec(**_valid(kind, files)) == data
    dumped = data.model_dump()
    assert dumped["kind"] == kind
    if kind != "cifar10":  # the fake CIFAR-10 has too few records for the default sizes
        ds = load_dataset(**{**dumped, "n_train": 4, "n_test": 2, "n_probe": 2})
        assert len(ds.x_train) == 4


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_refuses_unknown_keys(kind: str, files) -> None:
    with pytest.raises(SpecError, match=rf"data\.{kind}\.n_trian: Extra inputs"):
        _spec({**_valid(kind, files), "n_trian": 64})


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"n_train": True}, r"data\.digits\.n_train: Input should be a valid integer"),
        ({"n_train": "64"}, r"data\.digits\.n_train"),
        ({"n_train": 64.0}, r"data\.digits\.n_train"),
        ({"n_probe": 0}, r"data\.digits\.n_probe"),
        ({"seed": -1}, r"data\.digits\.seed"),
        ({"as_images": "yes"}, r"data\.digits\.as_images"),
        ({"standardize": "pixel"}, r"data\.digits\.standardize"),
        ({"seq_len": 8}, r"data\.digits\.seq_len: Extra inputs"),
        ({"kind": "chars", "as_images": True}, r"data\.chars\.as_images: Extra inputs"),
        ({"kind": "chars", "n_test": None}, r"data\.chars\.n_test"),
        ({"kind": "chars", "seq_len": 0}, r"data\.chars\.seq_len"),
        ({"kind": "chars", "seq_len": True}, r"data\.chars\.seq_len"),
        ({"kind": "synthetic", "n_test": None}, r"data\.synthetic\.n_test"),
        ({"kind": "synthetic", "noise": True}, r"data\.synthetic\.noise"),
        ({"kind": "synthetic", "noise": float("inf")}, r"data\.synthetic\.noise"),
        ({"kind": "synthetic", "noise": -0.1}, r"data\.synthetic\.noise"),
        ({"kind": "synthetic", "teacher": "cubic"}, r"data\.synthetic\.teacher"),
        ({"kind": "synthetic", "d_in": 0}, r"data\.synthetic\.d_in"),
        ({"kind": "cifar10"}, r"data\.cifar10\.data_dir: Field required"),
        ({"kind": "cifar10", "data_dir": 3}, r"data\.cifar10\.data_dir"),
        ({"kind": "text"}, r"data\.text\.path: Field required"),
        ({"kind": "text", "path": ""}, r"data\.text\.path"),
        ({"kind": "mnist"}, r"data\.kind='mnist' is not a data set kind; allowed: 'digits'"),
        ("digits", r"data\.digits: Input should be a valid dictionary"),
    ],
)
def test_bad_data_names_the_field(data, needle) -> None:
    with pytest.raises(SpecError, match=needle):
        _spec(data)


def test_cifar10_directory_is_checked_when_the_spec_is(files) -> None:
    nowhere = files["tmp"] / "nowhere"
    with pytest.raises(SpecError, match=r"data\.cifar10: .*data_dir='.*nowhere' is not a dir"):
        _spec({"kind": "cifar10", "data_dir": str(nowhere)})
    empty = files["tmp"] / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match=r"not found in data_dir=.*data_batch_1\.bin.*test_batch"):
        _spec({"kind": "cifar10", "data_dir": str(empty)})
    partial = _cifar_bin(files["tmp"] / "partial", skip="data_batch_4.bin")
    with pytest.raises(SpecError, match=r"incomplete copy.*lacks data_batch_4\.bin"):
        _spec({"kind": "cifar10", "data_dir": str(partial)})
    # The binary records are counted: the default n_train=256 does not fit 15 images.
    with pytest.raises(SpecError, match=r"n_train=256 is outside \[1, 15\]"):
        _spec({"kind": "cifar10", "data_dir": str(files["cifar"])})
    # Its parent, holding cifar-10-batches-bin, and a pathlib.Path are accepted.
    parent = files["tmp"] / "parent"
    _cifar_bin(parent / "cifar-10-batches-bin")
    data = DataSpec(kind="cifar10", data_dir=parent, n_train=4, n_test=2, n_probe=2)
    assert data.model_dump()["data_dir"] == str(parent)


def test_text_files_are_checked_when_the_spec_is(files) -> None:
    tmp = files["tmp"]
    ok = {"kind": "text", "n_train": 4, "n_test": 2, "n_probe": 2}
    with pytest.raises(SpecError, match=r"data\.text: .*path='.*nowhere\.txt' does not exist"):
        _spec({**ok, "path": str(tmp / "nowhere.txt")})
    with pytest.raises(SpecError, match=r"test_path='.*nowhere\.txt' does not exist"):
        _spec({**ok, "path": str(files["text"]), "test_path": str(tmp / "nowhere.txt")})
    (tmp / "empty.txt").write_bytes(b"")
    with pytest.raises(SpecError, match=r"path='.*empty\.txt' is empty"):
        _spec({**ok, "path": str(tmp / "empty.txt")})
    (tmp / "latin.txt").write_bytes("né ".encode("latin-1") * 100)
    with pytest.raises(SpecError, match=r"path='.*latin\.txt' is not UTF-8"):
        _spec({**ok, "path": str(tmp / "latin.txt")})
    with pytest.raises(SpecError, match=r"path='.*wiki\.train\.tokens' is too short"):
        _spec({**ok, "path": str(files["text"]), "n_train": 10_000})
    with pytest.raises(SpecError, match=r"data\.text\.tokenizer"):
        _spec({**ok, "path": str(files["text"]), "tokenizer": "bpe"})
    spec = _spec({**ok, "path": str(files["text"]), "tokenizer": "word", "seq_len": 4})
    assert spec.data.model_dump() == {  # a new kind: every field, defaults included
        **ok,
        "seed": 0,
        "path": str(files["text"]),
        "test_path": None,
        "tokenizer": "word",
        "seq_len": 4,
        "max_vocab": None,
    }


def test_stored_configs_can_skip_the_file_checks(files) -> None:
    data = {"kind": "cifar10", "data_dir": str(files["tmp"] / "elsewhere")}
    spec = SweepSpec.model_validate({**BASE, "data": data}, context={"check_files": False})
    assert spec.data.model_dump()["data_dir"] == data["data_dir"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_has_its_loaders_arguments_and_defaults(kind: str) -> None:
    """The spec classes mirror the loaders' signatures: same names, same defaults."""
    loader = {
        name: p.default
        for name, p in inspect.signature(_LOADERS[kind]).parameters.items()
        if name not in ("n_train", "n_test", "n_probe", "seed", "dtype")
    }
    common = {
        name: p.default
        for name, p in inspect.signature(load_dataset).parameters.items()
        if name in ("n_train", "n_test", "n_probe", "seed")
    }
    fields = KINDS[kind].model_fields
    assert set(fields) == {"kind", *common, *loader}
    for name, default in {**common, **loader}.items():
        required = fields[name].is_required()
        if name in ("data_dir", "path"):  # the loader's None raises "needs data_dir=/path="
            assert required and default is None
        else:
            assert not required and fields[name].default == default, name

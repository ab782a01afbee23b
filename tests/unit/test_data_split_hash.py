"""Bundled dataset, registry splitting and canonical content hashing."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from synthreg.data import (
    Schema,
    SplitError,
    UnknownDatasetError,
    load_dataset,
    sha256_hex,
    split_registries,
)
from synthreg.data.hashing import UnhashableError, array_bytes, array_sha256
from synthreg.workspace import Workspace


@pytest.fixture(scope="module")
def rotterdam() -> pd.DataFrame:
    return load_dataset("rotterdam")


def test_rotterdam_shape_and_columns(rotterdam: pd.DataFrame) -> None:
    assert rotterdam.shape == (2982, 14)
    assert list(rotterdam.columns) == Schema.bundled("rotterdam").column_names
    assert "pid" not in rotterdam.columns and "rownames" not in rotterdam.columns
    assert not rotterdam.isna().any().any()


def test_unknown_dataset() -> None:
    with pytest.raises(UnknownDatasetError):
        load_dataset("no-such-registry")


def test_iid_split_is_a_deterministic_partition(rotterdam: pd.DataFrame) -> None:
    a = split_registries(rotterdam, 3, "iid", seed=7)
    b = split_registries(rotterdam, 3, "iid", seed=7)
    c = split_registries(rotterdam, 3, "iid", seed=8)
    assert [len(p) for p in a] == [994, 994, 994]
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert not a[0].equals(c[0])
    pooled = pd.concat(a).sort_values(list(rotterdam.columns)).reset_index(drop=True)
    expected = rotterdam.sort_values(list(rotterdam.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(pooled, expected)


def test_non_iid_split_by_period(rotterdam: pd.DataFrame) -> None:
    parts = split_registries(rotterdam, 3, "non-iid", seed=0, by="year")
    sizes = [len(p) for p in parts]
    assert sum(sizes) == len(rotterdam)
    assert sizes[0] < sizes[1] < sizes[2]
    # periods do not overlap: every registry holds its own years
    for left, right in itertools.pairwise(parts):
        assert left["year"].max() < right["year"].min()
    assert split_registries(rotterdam, 3, "non-iid", seed=0, by="year")[1].equals(parts[1])


def test_split_errors(rotterdam: pd.DataFrame) -> None:
    with pytest.raises(SplitError):
        split_registries(rotterdam, 0)
    with pytest.raises(SplitError):
        split_registries(rotterdam, 3, "non-iid", by=None)
    with pytest.raises(SplitError):
        split_registries(rotterdam, 3, "non-iid", by="meno")  # only 2 distinct values


def test_array_hash_is_content_based() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert array_sha256(x) == sha256_hex(x) == array_sha256(torch.from_numpy(x.copy()))
    assert array_sha256(x) == array_sha256(np.asfortranarray(x))  # C order
    assert array_sha256(x) == array_sha256(x.astype(">f4"))  # byte order is canonicalised
    assert array_sha256(x) == array_sha256(x.astype(np.float64))  # values are hashed as float32
    assert array_sha256(x) == array_sha256(x.reshape(4, 3))  # shapes are carried by records, not hashed
    y = x.copy()
    y[2, 3] = np.nextafter(y[2, 3], np.float32(100))
    assert array_sha256(x) != array_sha256(y)
    with pytest.raises(UnhashableError):
        array_bytes(np.array(["a", "b"], dtype=object))


def test_array_hash_is_the_workspace_name_of_the_raw_float32_bytes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = np.linspace(-1, 1, 9, dtype=np.float64).reshape(3, 3)
    raw = x.astype("<f4").tobytes(order="C")
    assert array_bytes(x) == raw  # no header: exactly what the workspace stores
    assert Workspace(tmp_path).put(array_bytes(x)) == array_sha256(x) == hashlib.sha256(raw).hexdigest()


def test_frame_hash_ignores_index_but_not_values(rotterdam: pd.DataFrame) -> None:
    head = rotterdam.head(50)
    assert sha256_hex(head) == sha256_hex(head.set_axis(range(100, 150)))
    changed = head.copy()
    changed.loc[3, "size"] = ">50" if head.loc[3, "size"] != ">50" else "<=20"
    assert sha256_hex(changed) != sha256_hex(head)


@pytest.mark.slow  # spawns a Python process (~5 s under load)
def test_hash_is_stable_across_processes() -> None:
    code = (
        "import numpy as np; from synthreg.data.hashing import sha256_hex; "
        "print(sha256_hex(np.linspace(0, 1, 101, dtype=np.float32)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == sha256_hex(np.linspace(0, 1, 101, dtype=np.float32))


def test_colon_dataset_has_nullable_columns() -> None:
    colon = load_dataset("colon")
    assert colon.shape == (1858, 14)
    assert colon["nodes"].isna().sum() == 36 and colon["differ"].isna().sum() == 46
    assert str(colon["nodes"].dtype) == "Int64"


def test_nwtco_dataset_is_two_trials() -> None:
    nwtco = load_dataset("nwtco")
    assert nwtco.shape == (4028, 7)
    assert list(nwtco.columns) == Schema.bundled("nwtco").column_names
    assert sorted(nwtco["study"].unique()) == [3, 4] and not nwtco.isna().any().any()
    parts = split_registries(nwtco, 2, "non-iid", seed=0, by="study")
    assert [sorted(p["study"].unique()) for p in parts] == [[3], [4]]


def test_non_iid_split_keeps_missing_values_together() -> None:
    """Missing values of the split column are one group, ordered last (NaN != NaN
    must not cut the missing rows apart)."""
    colon = load_dataset("colon")
    parts = split_registries(colon, 3, "non-iid", seed=0, by="differ")
    assert sum(len(p) for p in parts) == len(colon)
    assert [p["differ"].isna().sum() for p in parts] == [0, 0, 46]
    assert [sorted(p["differ"].dropna().unique()) for p in parts] == [[1], [2], [3]]

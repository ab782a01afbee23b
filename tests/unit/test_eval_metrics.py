"""Unit tests of synthreg.eval metrics: they must move the right way on good vs bad data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthreg.data import dataset_schema, load_dataset
from synthreg.eval.associations import association_matrix
from synthreg.eval.errors import (
    ColumnTypeError,
    EmptyDataError,
    HistoryFormatError,
    SchemaMismatchError,
    TargetError,
)
from synthreg.eval.history import parse_history
from synthreg.eval.privacy import exact_copy_rate, privacy
from synthreg.eval.quality import quality
from synthreg.eval.table import TableSpec, check_frame
from synthreg.eval.utility import FIVE_YEARS_DAYS, default_task, holdout_split, utility


@pytest.fixture(scope="module")
def spec() -> TableSpec:
    return TableSpec.from_schema(dataset_schema("rotterdam"))


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    real = load_dataset("rotterdam").sample(1200, random_state=3).reset_index(drop=True)
    return holdout_split(real, 0.3, seed=1)


def _noise(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Same marginals' support, no structure: each column drawn uniformly from its observed values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.choice(frame[c].unique(), size=len(frame)) for c in frame.columns})


def _flip_outcome(frame: pd.DataFrame) -> pd.DataFrame:
    """Invert the 5-year-death label of every labelled row (features untouched)."""
    out = frame.copy()
    early = (out["death"] == 1) & (out["dtime"] < FIVE_YEARS_DAYS)
    late = out["dtime"] >= FIVE_YEARS_DAYS
    out.loc[early, ["death", "dtime"]] = [0, 6000]
    out.loc[late, ["death", "dtime"]] = [1, 100]
    return out


def test_spec_from_bundled_schema_marks_binary_and_categorical(spec: TableSpec) -> None:
    assert spec.columns[:3] == ("year", "age", "meno")
    assert {"meno", "size", "grade", "hormon", "chemo", "recur", "death"} == set(spec.categorical)
    assert "nodes" in spec.numerical


# SDMetrics costs ~0.05 s per column pair: quality tests use 6 of the 14 columns
# (15 pairs, including the strong age-meno association) to stay fast.
_SUB = ("age", "meno", "size", "nodes", "er", "death")


@pytest.fixture(scope="module")
def sub(spec: TableSpec, split) -> tuple[TableSpec, pd.DataFrame, pd.DataFrame]:
    small = TableSpec(columns=_SUB, categorical=spec.categorical & set(_SUB))
    train, hold = split
    return small, train[list(_SUB)], hold[list(_SUB)]


def test_quality_real_vs_real_beats_real_vs_noise(sub) -> None:
    small, train, hold = sub
    same = quality(train, hold, small)
    noise = quality(train, _noise(hold, 0), small)
    assert same.score > noise.score + 0.1
    assert same.column_shapes > noise.column_shapes
    assert same.column_pair_trends > noise.column_pair_trends
    assert same.pair_trends_all > noise.pair_trends_all
    assert set(same.columns) == set(_SUB)
    assert 0 < same.pairs_contributing <= same.pairs_total == 15


def test_quality_of_identical_data_is_perfect(sub) -> None:
    small, train, _ = sub
    q = quality(train, train, small)
    assert q.score == pytest.approx(1.0)
    assert q.pair_trends_all == pytest.approx(1.0)


def test_dcr_of_exact_copies_is_zero(split, spec) -> None:
    train, hold = split
    p = privacy(train, hold, train.sample(200, random_state=0), spec)
    assert p.dcr_synthetic_median == pytest.approx(0.0, abs=1e-6)
    assert p.exact_copy_rate == 1.0
    assert p.share_closer_than_holdout_p5 == 1.0
    assert p.dcr_holdout_median > 0.1


def test_dcr_of_noise_is_not_closer_than_holdout(split, spec) -> None:
    train, hold = split
    p = privacy(train, hold, _noise(hold, 1), spec)
    assert p.exact_copy_rate == 0.0
    assert p.dcr_synthetic_median > p.dcr_holdout_median
    assert p.share_closer_than_holdout_p5 < 0.05


def test_exact_copy_rate_counts_rows_not_columns(spec) -> None:
    a = check_frame(load_dataset("rotterdam").head(10), spec, "real")
    b = a.copy()
    b.loc[0, "age"] = b.loc[0, "age"] + 1  # one row changed in one column
    assert exact_copy_rate(a, b) == pytest.approx(0.9)


def test_tstr_with_real_as_synthetic_equals_trtr(split, spec) -> None:
    train, hold = split
    u = utility(train, hold, train, spec, seed=0)
    assert u.task == "death_5y"
    assert u.tstr_auc == pytest.approx(u.trtr_auc)
    assert u.tstr_accuracy == pytest.approx(u.trtr_accuracy)
    assert u.trtr_auc > 0.65  # baseline covariates do predict 5-year death


def test_tstr_with_inverted_outcome_is_worse_than_chance(split, spec) -> None:
    train, hold = split
    u = utility(train, hold, _flip_outcome(train), spec, seed=0)
    assert u.tstr_auc < 0.5 < u.trtr_auc


def test_single_class_synthetic_gives_constant_model(split, spec) -> None:
    train, hold = split
    alive = train[train["dtime"] >= FIVE_YEARS_DAYS]
    u = utility(train, hold, alive, spec)
    assert u.synthetic_single_class and u.tstr_auc == 0.5


def test_target_error_without_outcome_column() -> None:
    spec = TableSpec(columns=("a", "b"), categorical=frozenset({"b"}))
    with pytest.raises(TargetError):
        default_task(spec)


def test_relapse_task_leaves_out_the_time_to_relapse() -> None:
    """nwtco's default task predicts relapse from the baseline columns; edrel (days
    to relapse) would leak the label."""
    task = default_task(TableSpec.from_schema(dataset_schema("nwtco")))
    assert task.name == "rel" and "edrel" not in task.features
    assert set(task.features) == {"instit", "histol", "stage", "study", "age"}


def test_holdout_split_is_deterministic_and_disjoint() -> None:
    frame = pd.DataFrame({"x": range(100)})
    a_train, a_hold = holdout_split(frame, 0.2, seed=7)
    b_train, b_hold = holdout_split(frame, 0.2, seed=7)
    _, c_hold = holdout_split(frame, 0.2, seed=8)
    assert a_hold.equals(b_hold) and a_train.equals(b_train)
    assert not a_hold.equals(c_hold)
    assert len(a_hold) == 20 and set(a_hold.x).isdisjoint(a_train.x)


def test_check_frame_names_missing_and_extra_columns(split, spec) -> None:
    train, _ = split
    bad = train.drop(columns=["age"]).assign(shoe_size=1)
    with pytest.raises(SchemaMismatchError) as info:
        quality(train, bad, spec)
    assert info.value.frame == "synthetic"
    assert info.value.missing == ("age",) and info.value.extra == ("shoe_size",)


def test_check_frame_names_row_of_non_numeric_value(split, spec) -> None:
    train, _ = split
    bad = train.copy().astype({"nodes": object})
    bad.loc[5, "nodes"] = "many"
    with pytest.raises(ColumnTypeError) as info:
        check_frame(bad, spec, "synthetic")
    assert (info.value.column, info.value.row) == ("nodes", 5)


def test_check_frame_rejects_empty(spec, split) -> None:
    with pytest.raises(EmptyDataError):
        check_frame(split[0].iloc[:0], spec, "synthetic")


def test_association_matrix_detects_dependence() -> None:
    spec = TableSpec(columns=("x", "y", "c"), categorical=frozenset({"c"}))
    x = np.linspace(0, 1, 200)
    frame = pd.DataFrame({"x": x, "y": 2 * x + 1, "c": np.where(x > 0.5, "hi", "lo")})
    m = association_matrix(frame, spec)
    assert m.loc["x", "y"] == pytest.approx(1.0)
    assert m.loc["x", "c"] > 0.8
    shuffled = frame.assign(y=np.random.default_rng(0).permutation(frame.y.to_numpy()))
    assert association_matrix(shuffled, spec).loc["x", "y"] < 0.2


def test_parse_history_accepts_records_and_objects() -> None:
    class Loss:
        def __init__(self, rnd: int, reg: int) -> None:
            self.round, self.registry, self.g_loss, self.d_loss = rnd, reg, 0.5, -0.1

    objs = parse_history([Loss(1, 0), Loss(0, 1)])
    assert [(r.round, r.registry) for r in objs] == [(0, "1"), (1, "0")]
    dicts = parse_history({"history": [{"round": 0, "registry": "a", "g_loss": 1, "d_loss": 2}]})
    assert dicts[0].g_loss == 1.0


@pytest.mark.parametrize("bad", [[], [{"round": 0}], {"x": 1}, "nope",
                                 [{"round": 0, "registry": 0, "g_loss": "nan", "d_loss": 0}]])
def test_parse_history_rejects_malformed(bad: object) -> None:
    with pytest.raises(HistoryFormatError):
        parse_history(bad)

"""Machine-learning utility: train on synthetic, test on real (TSTR) vs train on real (TRTR).

Called by `write_report` and `bench/quality.py`. A `UtilityTask` says which
binary label to predict from which baseline features; the same classifier
(one-hot + standardise + L2 logistic regression, scikit-learn, seeded) is
fitted once on real training rows (TRTR) and once on synthetic rows (TSTR)
and both are scored on the same real test rows, which the generator must
not have seen (`holdout_split`). TSTR close to TRTR = the synthetic data
carries the clinical signal.

Default task for the Rotterdam cohort (`rotterdam_task`): death within five
years of surgery (`death == 1 and dtime < 5 * 365.25`) from the baseline
covariates known at surgery (year, age, meno, size, grade, nodes, pgr, er,
hormon, chemo). Records censored alive before five years have an unknown
label and are dropped. Why not the raw `death` or `recur` column: both mean
"event at any time during follow-up", and follow-up runs from 1 to 19 years
depending on the year of surgery, so they mostly encode follow-up length; a
fixed horizon is the usual clinical endpoint. Post-baseline columns (rtime,
recur, dtime, death) are never features: they would leak the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from synthreg.eval.errors import EmptyDataError, TargetError
from synthreg.eval.table import TableSpec, check_frame

FIVE_YEARS_DAYS = 5 * 365.25

# label(frame) -> (keep mask, 0/1 labels of the kept rows); frame is check_frame output.
LabelFn = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class UtilityTask:
    """A binary prediction task on records of one schema."""

    name: str
    description: str
    features: tuple[str, ...]
    label: LabelFn


@dataclass(frozen=True)
class UtilityResult:
    """TSTR and TRTR scores on the same real test rows."""

    task: str
    tstr_auc: float
    trtr_auc: float
    tstr_accuracy: float
    trtr_accuracy: float
    n_synthetic_train: int
    n_real_train: int
    n_real_test: int
    positive_rate_real_test: float
    positive_rate_synthetic: float
    synthetic_single_class: bool  # True -> TSTR model is a constant predictor

    @property
    def auc_gap(self) -> float:
        return self.trtr_auc - self.tstr_auc

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["auc_gap"] = self.auc_gap
        return out


def holdout_split(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (train, holdout) with `fraction` of rows held out, deterministic by seed."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    n_hold = max(1, round(fraction * len(frame)))
    hold = np.sort(order[:n_hold])
    train = np.sort(order[n_hold:])
    return (
        frame.iloc[train].reset_index(drop=True),
        frame.iloc[hold].reset_index(drop=True),
    )


def rotterdam_task() -> UtilityTask:
    """Death within five years of surgery from baseline covariates (see module doc)."""

    def label(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        died = frame["death"].astype(str).to_numpy() == "1"
        dtime = frame["dtime"].to_numpy(dtype=float)
        early_death = died & (dtime < FIVE_YEARS_DAYS)
        known = early_death | (dtime >= FIVE_YEARS_DAYS)
        return known, early_death[known].astype(int)

    return UtilityTask(
        name="death_5y",
        description="death within 5 years of surgery (rows censored alive before 5 years dropped), "
        "from baseline covariates",
        features=("year", "age", "meno", "size", "grade", "nodes", "pgr", "er", "hormon", "chemo"),
        label=label,
    )


def column_task(target: str, spec: TableSpec, exclude: tuple[str, ...] = ()) -> UtilityTask:
    """Predict a binary categorical column `target` from all other columns minus `exclude`.

    The positive class is the larger label in sort order ("1" of "0"/"1").
    """
    if target not in spec.columns:
        raise TargetError(target, "not a column of the schema")

    def label(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = frame[target]
        known = values.notna().to_numpy()
        classes = sorted(values[known].astype(str).unique())
        if len(classes) > 2:
            raise TargetError(target, f"not binary: classes {classes}")
        positive = classes[-1] if classes else "1"
        return known, (values[known].astype(str).to_numpy() == positive).astype(int)

    features = tuple(c for c in spec.columns if c != target and c not in exclude)
    return UtilityTask(name=target, description=f"{target} from {len(features)} columns",
                       features=features, label=label)


def default_task(spec: TableSpec) -> UtilityTask:
    """The task used when none is given: `rotterdam_task` if the schema has its columns."""
    needed = set(rotterdam_task().features) | {"death", "dtime"}
    if needed <= set(spec.columns):
        return rotterdam_task()
    # (outcome, columns that would leak it: the time to that outcome)
    for candidate, leaks in (("death", ()), ("recur", ()), ("status", ()), ("outcome", ()), ("rel", ("edrel",))):
        if candidate in spec.columns and spec.is_categorical(candidate):
            return column_task(candidate, spec, exclude=tuple(c for c in leaks if c in spec.columns))
    raise TargetError("<default>", f"no known binary outcome column among {list(spec.columns)}")


def utility(
    real_train: pd.DataFrame,
    real_test: pd.DataFrame,
    synthetic: pd.DataFrame,
    spec: TableSpec,
    task: UtilityTask | None = None,
    seed: int = 0,
) -> UtilityResult:
    """Fit the task's classifier on real_train (TRTR) and on synthetic (TSTR); score both on real_test.

    Raises `TargetError` when the real training or test rows have a single
    class (the task is undefined). A single-class synthetic set is a valid,
    bad result: TSTR then predicts that class for everyone (AUC 0.5).
    """
    task = task or default_task(spec)
    missing = [c for c in task.features if c not in spec.columns]
    if missing:
        raise TargetError(task.name, f"features {missing} not in the schema")
    x_tr, y_tr = _xy(check_frame(real_train, spec, "real"), task)
    x_te, y_te = _xy(check_frame(real_test, spec, "holdout"), task)
    x_sy, y_sy = _xy(check_frame(synthetic, spec, "synthetic"), task)
    for frame_name, y in (("real train", y_tr), ("real test", y_te)):
        if len(np.unique(y)) < 2:
            raise TargetError(task.name, f"{frame_name} rows have a single class")
    if len(y_sy) == 0:
        raise EmptyDataError("synthetic (labelled rows)", 0, 1)

    categorical = [c for c in task.features if spec.is_categorical(c)]
    trtr_p = _fit_predict(x_tr, y_tr, x_te, categorical, seed)
    single = len(np.unique(y_sy)) < 2
    tstr_p = np.full(len(y_te), float(y_sy[0])) if single else _fit_predict(x_sy, y_sy, x_te, categorical, seed)
    return UtilityResult(
        task=task.name,
        tstr_auc=float(roc_auc_score(y_te, tstr_p)),
        trtr_auc=float(roc_auc_score(y_te, trtr_p)),
        tstr_accuracy=float(accuracy_score(y_te, tstr_p >= 0.5)),
        trtr_accuracy=float(accuracy_score(y_te, trtr_p >= 0.5)),
        n_synthetic_train=len(y_sy),
        n_real_train=len(y_tr),
        n_real_test=len(y_te),
        positive_rate_real_test=float(y_te.mean()),
        positive_rate_synthetic=float(y_sy.mean()),
        synthetic_single_class=single,
    )


def _xy(frame: pd.DataFrame, task: UtilityTask) -> tuple[pd.DataFrame, np.ndarray]:
    keep, y = task.label(frame)
    return frame.loc[keep, list(task.features)].reset_index(drop=True), np.asarray(y, dtype=int)


def _classifier(x: pd.DataFrame, categorical: list[str], seed: int) -> Pipeline:
    numerical = [c for c in x.columns if c not in categorical]
    prep = ColumnTransformer(
        [
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                  OneHotEncoder(handle_unknown="ignore")), categorical),
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numerical),
        ]
    )
    return make_pipeline(prep, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def _fit_predict(x: pd.DataFrame, y: np.ndarray, x_test: pd.DataFrame, categorical: list[str],
                 seed: int) -> np.ndarray:
    model = _classifier(x, categorical, seed)
    model.fit(x, y)
    return np.asarray(model.predict_proba(x_test)[:, 1], dtype=float)

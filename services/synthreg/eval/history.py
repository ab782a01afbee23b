"""Training-history records as the evaluation reads them (loss curves, report).

Who calls: `synthreg.eval.plots.plot_loss_curves`, `write_report`, the
`synthreg report --history` CLI (JSON file). Accepted shapes, all
JSON-compatible:

- a list of records ``{"round": int, "registry": str|int, "g_loss": float,
  "d_loss": float, ...}`` (one per registry per round; extra keys ignored);
- a mapping with such a list under ``"history"`` or ``"rounds"``;
- a list of objects with those attributes (e.g. dataclass records of
  `synthreg.gan.federated`).

`HistoryFormatError` names what is missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthreg.eval.errors import HistoryFormatError, InputFileError

_KEYS = ("round", "registry", "g_loss", "d_loss")


@dataclass(frozen=True)
class LossRecord:
    """Mean generator and discriminator loss of one registry in one round."""

    round: int
    registry: str
    g_loss: float
    d_loss: float


def parse_history(history: Any) -> list[LossRecord]:
    """Normalise a training history (see module doc) into `LossRecord`s, sorted by round."""
    if isinstance(history, Mapping):
        for key in ("history", "rounds"):
            if key in history:
                history = history[key]
                break
        else:
            raise HistoryFormatError(f"mapping without 'history'/'rounds' key: {sorted(history)}")
    if hasattr(history, "history") and not isinstance(history, list):
        history = history.history
    if not isinstance(history, (list, tuple)):
        raise HistoryFormatError(f"expected a list of records, got {type(history).__name__}")
    records: list[LossRecord] = []
    for i, item in enumerate(history):
        fields = {k: _get(item, k) for k in _KEYS}
        missing = [k for k, v in fields.items() if v is None]
        if missing:
            raise HistoryFormatError(f"record {i} lacks {missing}")
        try:
            record = LossRecord(
                round=int(fields["round"]),
                registry=str(fields["registry"]),
                g_loss=float(fields["g_loss"]),
                d_loss=float(fields["d_loss"]),
            )
        except (TypeError, ValueError) as exc:
            raise HistoryFormatError(f"record {i}: {exc}") from exc
        if not (math.isfinite(record.g_loss) and math.isfinite(record.d_loss)):
            raise HistoryFormatError(f"record {i}: non-finite loss")
        records.append(record)
    if not records:
        raise HistoryFormatError("no records")
    return sorted(records, key=lambda r: (r.round, r.registry))


def load_history(path: Path) -> list[LossRecord]:
    """Read a history JSON file; `InputFileError` if unreadable, `HistoryFormatError` if malformed."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputFileError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not readable JSON ({exc})") from exc
    return parse_history(raw)


def _get(item: Any, key: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(key)
    return getattr(item, key, None)

"""`synthreg report`: evaluate a synthetic CSV against real data and write a report.

Thin wiring over `synthreg.eval.inputs.load_inputs` and
`synthreg.eval.report.write_report`. Bad input (missing file, data that do
not fit the schema, malformed history) prints one line naming the problem
and exits with code 2; `--json` prints the metrics (or the error) as JSON on
stdout instead of the human summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from synthreg.data import SchemaFormatError, SchemaValidationError
from synthreg.eval.errors import EvalError
from synthreg.eval.history import load_history
from synthreg.eval.inputs import load_inputs
from synthreg.eval.report import METRICS_NAME, write_report

_BAD_INPUT = 2


def report(
    synthetic: Annotated[Path, typer.Option("--synthetic", help="Synthetic records (CSV, schema columns).")],
    real: Annotated[str, typer.Option("--real", help="Bundled dataset name or real-data CSV.")] = "rotterdam",
    out: Annotated[Path, typer.Option("--out", help="Output folder for report.md, PNGs, metrics.json.")] = Path(
        "report"),
    history: Annotated[Path | None, typer.Option("--history", help="Training history JSON (loss curves).")] = None,
    holdout: Annotated[Path | None, typer.Option(
        "--holdout", help="Real records the generator never saw (CSV): enables the DCR comparison.")] = None,
    schema: Annotated[Path | None, typer.Option(
        "--schema", help="Schema YAML (default: the bundled schema of --real, or rotterdam's).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the utility split / classifier.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON on stdout.")] = False,
) -> None:
    """Evaluate synthetic data (fidelity, utility, privacy) and write a Markdown + PNG report."""
    console = Console(stderr=True)
    try:
        inputs = load_inputs(synthetic, real, schema, holdout)
        records = None if history is None else load_history(history)
        path = write_report(inputs.real, inputs.synthetic, inputs.schema, out,
                            history=records, holdout=inputs.holdout, seed=seed)
    except (EvalError, SchemaValidationError, SchemaFormatError) as exc:
        _fail(exc, as_json, console)
    metrics: dict[str, Any] = json.loads((path.parent / METRICS_NAME).read_text(encoding="utf-8"))
    if as_json:
        typer.echo(json.dumps({"report": str(path), "real": inputs.real_source, **metrics}, indent=2))
        return
    summary = path.read_text(encoding="utf-8").split("## Summary", 1)[1].split("\n\n", 2)[1]
    console.print(f"[bold]report[/] {path} (real: {inputs.real_source})")
    typer.echo(summary)


def _fail(exc: Exception, as_json: bool, console: Console) -> None:
    kind = type(exc).__name__
    if as_json:
        typer.echo(json.dumps({"error": {"type": kind, "message": str(exc)}}))
    else:
        console.print(f"[bold red]error[/] ({kind}): {exc}", highlight=False)
    raise typer.Exit(_BAD_INPUT) from exc

"""`synthreg schema infer | check | hash`: drafting, checking and identifying a schema.

Thin wiring over :mod:`synthreg.data.infer`, :mod:`synthreg.data.csvload` and
:meth:`synthreg.data.schema.Schema.hash`. A registry runs these on its own
machine: the data file is read locally and nothing is sent anywhere.

* ``infer DATA.csv`` prints a draft schema as YAML (stdout, or ``--out``); notes
  for the reviewer go to stderr. The draft must be reviewed and agreed before use.
* ``check DATA.csv --schema S.yaml`` lists every problem (header, then the first
  offending line of each column, lines counted with the header as line 1).
* ``hash S.yaml`` prints the schema hash the ledger records.

Exit codes: 0 success; 1 the data do not fit (``check``) or no schema can be
drafted (``infer``) -- one red line per problem on stderr; 2 the command could
not run (unreadable/malformed schema file, bad options). ``--json`` prints
data (or the errors) as JSON on stdout instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from synthreg.data.csvload import DEFAULT_MIN_ROWS, check_csv
from synthreg.data.infer import (
    DEFAULT_MARGIN,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_MAX_INT_CATEGORIES,
    SchemaInferenceError,
    infer_schema_csv,
)
from synthreg.data.schema import MalformedCSVError, Schema, SchemaFormatError, SchemaValidationError

app = typer.Typer(help="Draft a schema from data, check data against a schema, print a schema's hash.",
                  no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
DataArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="DATA.csv",
                                         help="A registry's CSV (header row; , ; tab or | delimited).")]
_DATA_FAILED = 1
_CANNOT_RUN = 2

_REVIEW = """Review before the consortium agrees on it: ranges are the observed
extremes widened by the margin ({margin}), not clinical plausibility limits;
categories are only the values seen; any edit changes the schema hash."""


@app.command()
def infer(
    data: DataArg,
    margin: Annotated[float, typer.Option("--margin", min=0.0, help="Widen numeric ranges by this "
                                          "fraction of (max - min) on each side.")] = DEFAULT_MARGIN,
    name: Annotated[str | None, typer.Option("--name", help="Schema name (default: the file's stem).")] = None,
    max_int_categories: Annotated[int, typer.Option(
        "--max-int-categories", min=0, help="Integer columns with at most this many distinct values "
        "become categorical.")] = DEFAULT_MAX_INT_CATEGORIES,
    max_categories: Annotated[int, typer.Option(
        "--max-categories", min=1, help="Refuse text columns with more distinct values "
        "(identifiers, free text).")] = DEFAULT_MAX_CATEGORIES,
    out: Annotated[Path | None, typer.Option("--out", help="Write the YAML here instead of stdout.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft a schema (YAML in the format `Schema` loads) from a registry's CSV."""
    try:
        draft = infer_schema_csv(data, name=name, margin=margin, max_int_categories=max_int_categories,
                                 max_categories=max_categories)
    except (SchemaInferenceError, MalformedCSVError) as exc:
        _fail("schema infer", exc, as_json, _DATA_FAILED)
    except OSError as exc:
        _fail("schema infer", exc, as_json, _CANNOT_RUN)
    text = draft.yaml(_REVIEW.format(margin=margin))
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({"schema": draft.schema.to_dict(), "sha256": draft.schema.hash(),
                               "rows": draft.rows, "notes": list(draft.notes),
                               "out": None if out is None else str(out)}, indent=1))
    elif out is None:
        typer.echo(text, nl=False)
    for note in draft.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if out is not None and not as_json:
        console.print(f"wrote {escape(str(out))}: schema {draft.schema.name!r}, "
                      f"{len(draft.schema.columns)} columns from {draft.rows} rows (sha256 {draft.schema.hash()})")


@app.command()
def check(
    data: DataArg,
    schema_path: Annotated[Path, typer.Option("--schema", exists=True, dir_okay=False, readable=True,
                                              help="The agreed schema YAML.")],
    min_rows: Annotated[int, typer.Option("--min-rows", min=0,
                                          help="Refuse files with fewer data rows.")] = DEFAULT_MIN_ROWS,
    as_json: JsonOpt = False,
) -> None:
    """Validate a registry's CSV against a schema; list every problem (exit 1 if any)."""
    schema = _load_schema(schema_path, "schema check", as_json)
    try:
        result = check_csv(data, schema, min_rows=min_rows)
    except MalformedCSVError as exc:
        _fail("schema check", exc, as_json, _DATA_FAILED)
    except OSError as exc:
        _fail("schema check", exc, as_json, _CANNOT_RUN)
    if as_json:
        typer.echo(json.dumps({"ok": result.ok, "file": result.path, "rows": result.rows,
                               "delimiter": result.delimiter, "schema": schema.name,
                               "schema_sha256": schema.hash(),
                               "errors": [_error_dict(e) for e in result.errors]}, indent=1))
    elif result.ok:
        console.print(f"[green]ok:[/] {escape(result.path)} fits schema {schema.name!r} "
                      f"(sha256 {schema.hash()}): {result.rows} rows, delimiter {result.delimiter!r}")
    else:
        console.print(f"[bold red]{escape(result.path)} does not fit schema {schema.name!r}:[/] "
                      f"{len(result.errors)} problem(s)")
        for err in result.errors:
            console.print(f"  - {escape(str(err))}")
    if not result.ok:
        raise typer.Exit(_DATA_FAILED)


@app.command("hash")
def hash_(
    schema_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="SCHEMA.yaml",
                                                help="A schema YAML file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the schema's SHA-256 (of its canonical JSON): what the ledger records."""
    schema = _load_schema(schema_path, "schema hash", as_json)
    if as_json:
        typer.echo(json.dumps({"schema": str(schema_path), "name": schema.name, "version": schema.version,
                               "sha256": schema.hash()}))
    else:
        typer.echo(schema.hash())


def _load_schema(path: Path, what: str, as_json: bool) -> Schema:
    try:
        return Schema.load(path)
    except (SchemaFormatError, OSError, UnicodeDecodeError) as exc:
        _fail(what, exc, as_json, _CANNOT_RUN)


def _error_dict(err: SchemaValidationError) -> dict[str, Any]:
    return {"kind": err.kind, "type": type(err).__name__, "column": err.column, "line": err.line,
            "row": err.row, "value": None if err.value is None else str(err.value),
            "detail": err.detail, "rows_affected": err.n_bad, "message": str(err)}


def _fail(what: str, exc: Exception, as_json: bool, code: int) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}}))
    else:
        console.print(f"[bold red]{what} failed:[/] {escape(str(exc))}")
    raise typer.Exit(code) from exc

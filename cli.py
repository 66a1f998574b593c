"""The `dmp-ingest` command: arguments and output only; the work is in flows and pipelines.

Exit codes: 0 success (failed messages are data, shown in the summary), 1 a user error with
a one-line message (or, with --strict, an input that failed or was quarantined), 2 bad usage,
3 the store or archive could not be reached.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class UserError(Exception):
    """Shown as one line, exit code 1."""


class Unavailable(Exception):
    """The store or the archive cannot be reached: exit code 3."""


def _quiet_prefect() -> None:
    """Prefect's ephemeral mode, no telemetry, no console chatter; all overridable."""
    home = Path(os.environ.get("DMP_HOME", "var")).resolve()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_API_ENABLE_HTTP2", "false")


def _context():  # noqa: ANN202
    from sqlalchemy.exc import OperationalError

    from pipelines.archive import ArchiveError
    from pipelines.process import Context
    from pipelines.settings import SettingsError, load_settings

    try:
        return Context.from_settings(load_settings())
    except SettingsError as exc:
        raise UserError(f"settings: {exc}") from None
    except (OperationalError, ArchiveError) as exc:
        raise Unavailable(f"store or archive unavailable: {type(exc).__name__}") from exc


def _print_json(obj: object) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    # Piped output (scripts, CI logs) gets a wide fixed width instead of rich's 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


# -- ingest ---------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from connectors.files import InputPathError, iter_files

    try:
        files = [str(p) for p in iter_files(args.paths)]
    except InputPathError as exc:
        raise UserError(str(exc)) from None
    ctx = _context()  # fail early (exit 3) when the store or archive is unreachable
    _quiet_prefect()
    from flows import ingest_files

    received = ingest_files(files, source=args.source)
    from pipelines.report import ingest_summary

    summary = ingest_summary(ctx.engine, received["message_ids"], received["batch_ids"])
    if args.json:
        _print_json(summary)
    else:
        _print_ingest(summary)
    if args.strict and (summary["failed"] or summary["quarantined"]):
        return EXIT_USER
    return EXIT_OK


def _print_ingest(summary: dict) -> None:
    print(f"received {summary['received']} message(s): {summary['deposited']} deposited, "
          f"{summary['duplicate']} duplicate, {summary['failed']} failed, "
          f"{summary['quarantined']} quarantined; {summary['entries']} entries filed")
    if summary["patients"]:
        _table("Filed per dossier", ["patient", "imports", "entries", "duplicates"],
               [(p["patient"], p["imports"], p["entries"], p["duplicates"])
                for p in summary["patients"]])
    problems = summary["problems"]
    if problems:
        _table("Failed and quarantined", ["import", "file", "status", "code", "where", "why"],
               [(p["id"], p["file"], p["status"], p["error_code"], p["error_location"],
                 p["error_message"]) for p in problems])


# -- imports --------------------------------------------------------------------------------
def cmd_imports_list(args: argparse.Namespace) -> int:
    from pipelines.report import list_imports

    ctx = _context()
    rows = list_imports(ctx.engine, status=args.status, source=args.source,
                        error_code=args.code, limit=args.limit)
    if args.json:
        _print_json(rows)
    else:
        _table(f"Imports ({len(rows)})",
               ["id", "received", "source", "file", "format", "status", "stage", "code",
                "entries", "dup."],
               [(r["id"], r["received_at"][:19], r["source"], r["file_name"], r["format"],
                 r["status"], r["stage"], r["error_code"], r["entries"], r["duplicates"])
                for r in rows])
    return EXIT_OK


def cmd_imports_show(args: argparse.Namespace) -> int:
    from pipelines.report import show_import

    ctx = _context()
    info = show_import(ctx.engine, args.id)
    if info is None:
        raise UserError(f"no import {args.id}")
    if args.json:
        _print_json(info)
        return EXIT_OK
    for key in ("id", "status", "stage", "error_code", "error_location", "error_message",
                "source", "channel", "file_name", "part", "received_at", "format", "sha256",
                "size", "logical_id", "patient_id", "entries", "duplicates", "duplicate_of",
                "batch_of"):
        if info.get(key) not in (None, ""):
            print(f"{key:>15}: {info[key]}")
    for w in info.get("warnings") or []:
        print(f"{'warning':>15}: {w}")
    if info["attempts"]:
        _table("Attempts", ["started", "trigger", "code version", "status", "code", "message"],
               [(a["started_at"][:19], a["trigger"], a["code_version"], a["status"],
                 a["error_code"], a["error_message"]) for a in info["attempts"]])
    return EXIT_OK


def cmd_imports_rerun(args: argparse.Namespace) -> int:
    from pipelines.rerun import select_ids

    ctx = _context()
    ids = list(args.ids)
    if args.status or args.source or args.code:
        ids += select_ids(ctx.engine, status=args.status, source=args.source,
                          error_code=args.code)
    if not ids:
        raise UserError("nothing to rerun: give import ids or a filter (--status ...)")
    _quiet_prefect()
    from flows import rerun_imports

    totals = rerun_imports(sorted(set(ids)))
    if args.json:
        _print_json({"requested": len(set(ids)), "outcomes": totals})
    else:
        done = ", ".join(f"{n} {s}" for s, n in sorted(totals.items())) or "nothing reopened"
        print(f"rerun of {len(set(ids))} import(s): {done}")
    return EXIT_OK


# -- serve ----------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from connectors.service import serve
    from pipelines.settings import SettingsError

    ctx = _context()
    changes = {k: v for k, v in (("host", args.mllp_host), ("port", args.mllp_port),
                                 ("ack_mode", args.ack_mode)) if v is not None}
    if changes:
        listener = dataclasses.replace(ctx.settings.listener, **changes)
        ctx.settings = dataclasses.replace(ctx.settings, listener=listener)
    polls = not args.no_pollers and bool(ctx.settings.folders or ctx.settings.buckets)
    if args.no_mllp and args.no_process and not polls:
        raise UserError("nothing to serve: --no-mllp and --no-process, and no folder or "
                        "bucket source to poll")
    try:
        counters = asyncio.run(serve(ctx, mllp=not args.no_mllp, process=not args.no_process,
                                     pollers=not args.no_pollers))
    except OSError as exc:  # port taken, TLS files unreadable
        raise UserError(f"cannot start the listener: {exc.strerror or exc}") from None
    except SettingsError as exc:
        raise UserError(str(exc)) from None
    done = ", ".join(f"{n} {s}" for s, n in sorted(counters["processed"].items())) or "none"
    polled = counters.get("polled") or {}
    taken = (f"; polled: {sum(polled.values())} file(s)/object(s) from {len(polled)} "
             f"source(s)" if polled else "")
    print(f"dmp-ingest serve: stopped; {counters['connections']} connection(s), "
          f"{counters['acks']} ACK(s) sent; processed: {done}{taken}")
    return EXIT_OK


# -- dossiers -------------------------------------------------------------------------------
def cmd_dossier_create(args: argparse.Namespace) -> int:
    from pipelines.dossier_admin import DossierInput, create_dossiers

    ctx = _context()
    if args.from_csv:
        try:
            with open(args.from_csv, encoding="utf-8", newline="") as fh:
                items = [DossierInput.from_mapping(r) for r in csv.DictReader(fh)]
        except OSError as exc:
            raise UserError(f"cannot read {args.from_csv}: {exc.strerror}") from None
    else:
        missing = [n for n in ("family", "given", "birth_date", "sex") if not getattr(args, n)]
        if missing:
            raise UserError("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
        items = [DossierInput(ins=args.ins, family=args.family, given=args.given,
                              birth_date=args.birth_date, sex=args.sex)]
    try:
        created = create_dossiers(ctx.engine, items, skip_existing=bool(args.from_csv))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json({"created": created})
    else:
        print(f"created {len(created)} dossier(s): " + ", ".join(map(str, created)))
    return EXIT_OK


def cmd_dossier_show(args: argparse.Namespace) -> int:
    from pipelines.report import show_dossier

    ctx = _context()
    dossier = show_dossier(ctx.engine, args.patient, history=args.history)
    if dossier is None:
        raise UserError(f"no dossier {args.patient}")
    if args.json:
        _print_json(dossier)
        return EXIT_OK
    p = dossier["patient"]
    print(f"dossier {p['id']}: {p['family']} {p['given']}, born {p['birth_date']}, "
          f"sex {p['sex']}, INS {p['ins'] or '-'}")
    _table(f"Entries ({len(dossier['entries'])})",
           ["type", "code", "system", "display", "value", "unit", "range", "flag", "status",
            "effective", "v"],
           [(e["type"], e["code"], e["system"], (e["display"] or "")[:40],
             (e["value"] or "")[:40], e["unit"], e["reference_range"], e["interpretation"],
             e["status"] + ("" if e["mapped"] else " (unmapped)"), e["effective"],
             e["version"]) for e in dossier["entries"]])
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmp-ingest",
                                     description="Intake of lab results and documents into "
                                     "patient dossiers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest files or folders (HL7v2, CDA, PDF)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--source", default="files", help="sender id (mapping tables, dedupe)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any input failed or was quarantined")
    p.set_defaults(func=cmd_ingest)

    imports = sub.add_parser("imports", help="the import ledger").add_subparsers(
        dest="action", required=True)
    p = imports.add_parser("list", help="list imports")
    p.add_argument("--status")
    p.add_argument("--source")
    p.add_argument("--code", help="error code")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_list)
    p = imports.add_parser("show", help="one import, with every attempt")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_show)
    p = imports.add_parser("rerun", help="replay imports from the archive")
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--status")
    p.add_argument("--source")
    p.add_argument("--code", help="error code")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_rerun)

    p = sub.add_parser("serve", help="the long-running service: MLLP listener and processing")
    p.add_argument("--mllp-host", dest="mllp_host", help="listen address (DMP_MLLP_HOST)")
    p.add_argument("--mllp-port", dest="mllp_port", type=int,
                   help="listen port (DMP_MLLP_PORT, default 2575; 0 picks a free one)")
    p.add_argument("--ack-mode", dest="ack_mode", choices=["accept", "application"],
                   help="AA once stored (accept, default) or once processed (application)")
    p.add_argument("--no-mllp", dest="no_mllp", action="store_true",
                   help="do not listen; only process the ledger")
    p.add_argument("--no-process", dest="no_process", action="store_true",
                   help="only receive; leave processing to other workers")
    p.add_argument("--no-pollers", dest="no_pollers", action="store_true",
                   help="do not poll the declared [folders.*] and [buckets.*] sources")
    p.set_defaults(func=cmd_serve)

    dossier = sub.add_parser("dossier", help="patient dossiers").add_subparsers(
        dest="action", required=True)
    p = dossier.add_parser("create", help="create a dossier")
    p.add_argument("--ins", help="NIR/NIA with its key (15 characters)")
    p.add_argument("--family")
    p.add_argument("--given")
    p.add_argument("--birth-date", dest="birth_date", help="YYYY-MM-DD")
    p.add_argument("--sex", choices=["F", "M"])
    p.add_argument("--from-csv", dest="from_csv",
                   help="CSV with columns ins,family,given,birth_date,sex (existing skipped)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_create)
    p = dossier.add_parser("show", help="a dossier and its current entries")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--history", action="store_true", help="include superseded versions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("DMP_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"dmp-ingest: {exc}", file=sys.stderr)
        return EXIT_USER
    except Unavailable as exc:
        print(f"dmp-ingest: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

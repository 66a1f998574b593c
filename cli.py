"""The `dmp-ingest` command: arguments and output only; the work is in flows and pipelines.

Exit codes: 0 success (failed messages are data, shown in the summary), 1 a user error with
a one-line message (or, with --strict, an input that failed or was quarantined), 2 bad usage,
3 the store or archive could not be reached. `check` is a monitoring plugin's: 0 ok,
1 warning, 2 critical, 3 unknown (it could not be made: a user error included).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a tool killed by it gives the shell
SUMMARY_ROWS = 200  # rows per table of an ingest summary for people (--json has them all)


class UserError(Exception):
    """Shown as one line, exit code 1."""


class Unavailable(Exception):
    """The store or the archive cannot be reached: exit code 3."""


def _quiet_prefect() -> None:
    """Prefect's home under DMP_HOME, no telemetry, no console chatter; all overridable."""
    home = Path(os.environ.get("DMP_HOME", "var")).resolve()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_API_ENABLE_HTTP2", "false")
    # Prefect's event sender logs, under its class name and outside Prefect's logging
    # settings, 'Still processing items' while it flushes its events at a command's end.
    logging.getLogger("EventsWorker").setLevel(logging.ERROR)


def _prefect_api():  # noqa: ANN202
    """Where this command's flows run: the configured Prefect API when there is one (a
    server, or the test harness), else the warm local server of flows.py
    (``DMP_PREFECT_SERVER=ephemeral`` gives Prefect's own per-command server back)."""
    from contextlib import nullcontext

    _quiet_prefect()
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    if get_current_settings().api.url or os.environ.get("DMP_PREFECT_SERVER") == "ephemeral":
        return nullcontext()
    from pipelines.local_server import LocalServerError, use_local_server

    idle = os.environ.get("DMP_PREFECT_IDLE_SECONDS")
    try:
        url = use_local_server(Path(os.environ["PREFECT_HOME"]),
                               **({"idle_seconds": float(idle)} if idle else {}))
    except ValueError:
        raise UserError(f"DMP_PREFECT_IDLE_SECONDS: a number of seconds expected, "
                        f"not {idle!r}") from None
    except LocalServerError as exc:
        raise Unavailable(str(exc)) from None
    # No heartbeats to the local server: nothing watches them there (they serve a remote
    # server's crash detection), and stopping their thread cost up to 1 s at every flow's end.
    return temporary_settings(updates={PREFECT_API_URL: url,
                                       PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _context():  # noqa: ANN202
    from sqlalchemy.exc import OperationalError

    from pipelines.archive import ArchiveError
    from pipelines.process import Context
    from pipelines.settings import SettingsError, load_settings

    try:
        ctx = Context.from_settings(load_settings())
    except SettingsError as exc:
        raise UserError(f"settings: {exc}") from None
    except (OperationalError, ArchiveError) as exc:
        raise Unavailable(f"store or archive unavailable: {type(exc).__name__}") from exc
    _opened.append(ctx.engine)
    return ctx


# The engines the command opened, closed when ``main`` returns: a process's exit would close
# them, but ``main`` also runs in-process (the tests call it so), where each command left
# its SQLite connections and write-turn lock files open (hundreds of descriptors over a
# test session).
_opened: list = []


def _close_opened() -> None:
    while _opened:
        _opened.pop().dispose()


def _engine():  # noqa: ANN202
    """The store's engine alone (``db`` commands: no migration on open, no archive)."""
    from dossiers.db import make_engine
    from pipelines.settings import SettingsError, load_settings

    try:
        return make_engine(load_settings().database_url)
    except SettingsError as exc:
        raise UserError(f"settings: {exc}") from None


def cmd_db(args: argparse.Namespace) -> int:
    """``db current``: the store's revision and the code's; ``db upgrade``: migrate to head."""
    from sqlalchemy.exc import SQLAlchemyError

    from dossiers import migrate

    engine = _engine()
    try:
        done = migrate.upgrade(engine) if args.action == "upgrade" else []
        result = {"current": migrate.current(engine), "head": migrate.head(), "done": done}
    except SQLAlchemyError as exc:
        raise Unavailable(f"store unavailable or not migratable: {type(exc).__name__}") from exc
    finally:
        engine.dispose()
    if args.json:
        _print_json(result)
    else:
        for line in done:
            print(line)
        state = "up to date" if result["current"] == result["head"] else "upgrade needed"
        print(f"store revision {result['current'] or 'none'}, code head {result['head']}: "
              f"{state}")
    return 0


def cmd_prefect(args: argparse.Namespace) -> int:
    """``prefect status``: the warm local Prefect server, if any; ``prefect stop``: stop it
    (the next command starts one again)."""
    from pipelines import local_server  # no Prefect import: 2 s less per command

    _quiet_prefect()
    home = Path(os.environ["PREFECT_HOME"])
    if args.action == "stop":
        stopped = local_server.stop_local_server(home)
        print("local Prefect server stopped" if stopped else "no local Prefect server running")
        return 0
    server = local_server.read_local_server(home)
    if server is None or not local_server.local_server_answers(server):
        print("no local Prefect server running")
    else:
        print(f"local Prefect server: pid {server.pid}, API {server.api_url}")
    return 0


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
    from connectors.files import InputPathError, iter_files, to_wire

    try:
        files = [to_wire(p) for p in iter_files(args.paths)]
    except InputPathError as exc:
        raise UserError(str(exc)) from None
    ctx = _context()  # fail early (exit 3) when the store or archive is unreachable
    with _prefect_api(), _give_back_if_interrupted("ingest"):
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
    if summary.get("held"):
        print(f"{summary['held']} draft(s) held back, not for patient care yet: filed when "
              "their sender says they are signed (MDM^T03, T04, T08)")
    if summary.get("adt"):
        print(f"{summary['adt']} hospital ADT message(s) applied to dossiers (consent, "
              "identity): deposited without entries")
    shown = SUMMARY_ROWS
    patients, problems = summary["patients"], summary["problems"]
    if patients:
        _table("Filed per dossier", ["patient", "imports", "entries", "duplicates"],
               [(p["patient"], p["imports"], p["entries"], p["duplicates"])
                for p in patients[:shown]])
    if problems:
        _table("Failed and quarantined", ["import", "file", "status", "code", "where", "why"],
               [(p["id"], p["file"], p["status"], p["error_code"], p["error_location"],
                 p["error_message"]) for p in problems[:shown]])
    if len(patients) > shown or len(problems) > shown:
        print(f"(the first {shown} of {len(patients)} dossier(s) and {len(problems)} "
              "problem(s) shown; --json lists all, `dmp-ingest imports list` filters them)")


# -- imports --------------------------------------------------------------------------------
PROGRESS_MIN = 200  # reruns of fewer imports finish too fast for a progress bar
RERUN_LINES = 50  # imports failed again (or still waiting) named one per line after a rerun


def _filter(ctx, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """The ImportFilter of the filter options (shared by list, stats, rerun)."""
    from pipelines.filters import FilterError, build_filter

    try:
        return build_filter(ctx.engine, status=args.status, source=args.source,
                            channel=args.channel, stage=args.stage, code=args.code,
                            since=args.since, until=args.until, patient=args.patient,
                            warnings=args.warnings, file=args.file, settings=ctx.settings,
                            warning=getattr(args, "warning", None))
    except FilterError as exc:
        raise UserError(str(exc)) from None


def _unseen_code(ctx, flt) -> str | None:  # noqa: ANN001
    """The one line to say when a filter names an error code, a channel or a stage no import
    ever had (it selects nothing: a typo, not an empty ledger)."""
    from pipelines.report import code_seen, unseen_words

    said = unseen_words(ctx.engine, flt)
    if flt.error_code is not None and not code_seen(ctx.engine, flt.error_code):
        said.insert(0, f"no import has error code {flt.error_code} (`imports stats` lists "
                    "the codes there are)")
    return "; ".join(said) or None


def _actor(args: argparse.Namespace):  # noqa: ANN202
    from pipelines.audit import Actor

    return Actor.current(getattr(args, "actor", None))


def cmd_imports_list(args: argparse.Namespace) -> int:
    from pipelines.report import count_imports, list_imports

    if args.limit < 1 or args.offset < 0:
        raise UserError("--limit must be 1 or more and --offset 0 or more")
    ctx = _context()
    if args.warning and args.group_by is not None:  # a group's options select it for rerun,
        raise UserError("--warning lists imports, it does not group them (rerun has no "  # which
                        "--warning: a group's rerun would take more than the group)")  # lacks it
    flt = _filter(ctx, args)
    if args.resolvable:
        return _imports_resolvable(ctx, flt, args)
    if args.group_by is not None:
        return _imports_groups(ctx, flt, args)
    try:
        rows = list_imports(ctx.engine, flt, sort=args.sort, limit=args.limit,
                            offset=args.offset)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not rows and (unseen := _unseen_code(ctx, flt)) is not None:
        print(f"dmp-ingest: {unseen}", file=sys.stderr)
    if args.json:
        _print_json(rows)
        return EXIT_OK
    total = count_imports(ctx.engine, flt)
    first, last = args.offset + 1, args.offset + len(rows)
    _table(f"Imports {first}-{last} of {total}" if rows else f"Imports (none of {total})",
           ["id", "received (UTC)", "source", "channel", "file", "format", "status", "stage",
            "code", "where", "entries", "dup.", "att.", "warn."],
           [(r["id"], r["received_at"][:19], r["source"], r["channel"], r["file_name"],
             r["format"], r["status"], r["stage"], r["error_code"], r["error_location"],
             r["entries"], r["duplicates"], r["attempts_count"], len(r["warnings"] or ()))
            for r in rows])
    if last < total:
        print(f"{total - last} more: --offset {last} for the next page "
              f"(--json pages the same way)")
    return EXIT_OK


def _imports_resolvable(ctx, flt, args: argparse.Namespace) -> int:  # noqa: ANN001
    """``imports list --resolvable``: the quarantined imports (no dossier found) whose
    message now names a dossier (INS, or a local identifier as the identity rules scope it),
    with that dossier's id; the other filter options narrow them. Read from the archive, at
    most SCAN_LIMIT of the most recent: said when older ones were left unread."""
    from pipelines.waiting import SCAN_LIMIT, resolvable_listing

    if args.group_by is not None:
        raise UserError("--resolvable lists imports, it does not group them")
    try:
        found = resolvable_listing(ctx, flt, sort=args.sort, limit=args.limit,
                                   offset=args.offset)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if found["truncated"]:
        print(f"dmp-ingest: only the {SCAN_LIMIT} most recent quarantined imports were read: "
              "narrow with --since, --source or --code for the older ones", file=sys.stderr)
    if not found["total"] and (unseen := _unseen_code(ctx, flt)) is not None:
        print(f"dmp-ingest: {unseen}", file=sys.stderr)
    if args.json:
        _print_json(found)
        return EXIT_OK
    rows, total = found["imports"], found["total"]
    first, last = args.offset + 1, args.offset + len(rows)
    _table(f"Quarantined imports a dossier now exists for {first}-{last} of {total}" if rows
           else f"Quarantined imports a dossier now exists for (none of {found['scanned']} "
           "read)",
           ["id", "received (UTC)", "source", "channel", "file", "format", "code", "dossier"],
           [(r["id"], r["received_at"][:19], r["source"], r["channel"], r["file_name"],
             r["format"], r["error_code"], ", ".join(map(str, r["dossiers"]))) for r in rows])
    if last < total:
        print(f"{total - last} more: --offset {last} for the next page")
    if rows:
        print("rerun them with `dmp-ingest imports rerun --resolvable` (the same options): "
              "the rerun decides with every identity rule")
    return EXIT_OK


def _imports_groups(ctx, flt, args: argparse.Namespace) -> int:  # noqa: ANN001
    """``imports list --group-by code,source``: one line per group ('412 × CODE_UNMAPPED
    from labo-x, first 02:14'), not 412 lines; with the words that select a group alone."""
    from pipelines.advice import rerun_kind
    from pipelines.report import group_imports, group_keys

    try:
        keys = group_keys(args.group_by)
    except ValueError as exc:
        raise UserError(f"--group-by: {exc}") from None
    if args.sort != "-id":
        raise UserError("--sort orders imports; groups come largest first")
    found = group_imports(ctx.engine, flt, keys, limit=args.limit, offset=args.offset)
    if not found["groups"] and (unseen := _unseen_code(ctx, flt)) is not None:
        print(f"dmp-ingest: {unseen}", file=sys.stderr)
    given = _given_filter(args, flt)
    for group in found["groups"]:
        if group["filter"] is not None:  # the group's values replace the same options
            group["filter"] = {**{k: v for k, v in given.items() if k not in keys},
                               **group["filter"]}
            group["select"] = _filter_words(group["filter"])
        if "code" in keys:  # what a rerun of it does (error_advice.csv's rerun column)
            group["rerun"] = rerun_kind(group["code"])
    if args.json:
        _print_json(found)
        return EXIT_OK
    shown = found["groups"]
    first, last = args.offset + 1, args.offset + len(shown)
    _table(f"Imports by {', '.join(keys)}: groups {first}-{last} of {found['groups_total']} "
           f"({found['total']} imports)" if shown else
           f"Imports by {', '.join(keys)} (no group of {found['total']} imports)",
           ["count", *keys, "first received (UTC)", "last received (UTC)", "select with"],
           [(g["count"], *[g[k] for k in keys], _minute(g["first_received"]),
             _minute(g["last_received"]), g["select"]) for g in shown])
    if last < found["groups_total"]:
        print(f"{found['groups_total'] - last} more group(s): --offset {last} for the next "
              "page")
    for line in _group_hints(shown, keys):
        print(line)
    return EXIT_OK


# What `imports list --group-by code` says of the groups a rerun does not help, per the
# ``rerun`` column of pipelines/tables/error_advice.csv (pipelines/advice.rerun_kind).
_NOT_RERUN = {"resend": "the sender must resend (a rerun fails again unchanged)",
              "by-id": "to check and assign one by one (imports show ID, imports assign ID)",
              "no": "nothing to rerun (refused at reception or nothing to file: discard)"}


def _group_hints(shown: list[dict], keys: list[str]) -> list[str]:
    """The next step for the groups shown: the rerun of the largest group a rerun helps;
    grouped by code, the codes a rerun does not help named apart with what they need (the
    advice table's ``rerun`` column): a group of CDA_DTD_FORBIDDEN rerun fails again."""
    selectable = [g for g in shown if g["select"] is not None]
    if "code" not in keys:  # codes mixed in a group: nothing tells them apart
        return [f"rerun a group: dmp-ingest imports rerun {selectable[0]['select']} --dry-run "
                "(then without --dry-run)"] if selectable else []
    lines = [f"rerun a group: dmp-ingest imports rerun {g['select']} --dry-run (then without "
             "--dry-run)" for g in selectable if g["rerun"] == "yes"][:1]
    for kind, label in _NOT_RERUN.items():
        groups = [g for g in selectable if g["rerun"] == kind]
        if groups:
            codes = list(dict.fromkeys(g["code"] for g in groups))
            lines.append(f"{', '.join(codes[:10])}{' ...' if len(codes) > 10 else ''}: "
                         f"{label}; list a group: dmp-ingest imports list "
                         f"{groups[0]['select']}")
    return lines


def _minute(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def _given_filter(args: argparse.Namespace, flt) -> dict:  # noqa: ANN001
    """The filter options given, by name; times as the instants they meant ('24h' pasted
    an hour later would select another window)."""
    given: dict = {}
    for name in ("status", "source", "channel", "stage", "code", "since", "until",
                 "patient", "file"):
        value = getattr(args, name, None)
        if value:
            given[name] = getattr(flt, name).isoformat() if name in ("since", "until") \
                else value
    if getattr(args, "warnings", False):
        given["warnings"] = True
    return given


def _filter_words(given: dict) -> str:
    """Filter options as shell words, in the order given."""
    import shlex

    return " ".join(f"--{k}" if v is True else f"--{k} {shlex.quote(str(v))}"
                    for k, v in given.items())


def cmd_imports_stats(args: argparse.Namespace) -> int:
    from pipelines.report import import_stats

    ctx = _context()
    flt = _filter(ctx, args)
    stats = import_stats(ctx.engine, flt)
    # a code, channel or stage no import ever had counts nothing: a typo, said as `list` says
    # it (zero everywhere read as 'no such failure')
    if not stats["total"] and (unseen := _unseen_code(ctx, flt)) is not None:
        print(f"dmp-ingest: {unseen}", file=sys.stderr)
    if args.json:
        _print_json(stats)
        return EXIT_OK
    _table(f"Imports per status ({stats['total']})", ["status", "count"],
           list(stats["by_status"].items()))
    if stats["with_warnings"]:
        print(f"{stats['with_warnings']} with warnings (`imports list --warnings` lists them)")
    if stats["by_code"]:
        _table("Per error code", ["code", "status", "stage", "count", "what to do"],
               [(r["error_code"], r["status"], r["stage"], r["count"], r["advice"])
                for r in stats["by_code"]])
    return EXIT_OK


def cmd_imports_show(args: argparse.Namespace) -> int:
    from pipelines.admin import record_show
    from pipelines.app_acks import application_acks
    from pipelines.report import show_import

    if args.output and not args.raw:  # it was ignored: exit 0, and no file written
        raise UserError("--output writes the raw content: give --raw with it")
    ctx = _context()
    raw = _read_raw(ctx, args) if args.raw else None  # first: the audit shows this read
    # the entries it filed are what a dossier holds: the look is in the patient's trail
    info = show_import(ctx.engine, args.id) if record_show(
        ctx.engine, args.id, _actor(args), args.reason) else None
    if info is None:
        raise UserError(f"no import {args.id}")
    info["application_acks"] = application_acks(ctx.settings.home, args.id)
    if args.json:
        if raw is not None:
            info["raw"] = {"format": raw.format, "charset": raw.charset, "text": raw.text,
                           "size": len(raw.data)}
        _print_json(info)
        return EXIT_OK
    for key in ("id", "status", "stage", "error_code", "error_location", "error_message",
                "discard_reason", "source", "channel", "file_name", "part", "received_at",
                "format", "sha256", "size", "logical_id", "patient_id", "assigned_patient_id",
                "entries", "duplicates", "duplicate_of", "batch_of", "edited_from",
                "not_before", "retries"):
        if info.get(key) not in (None, "", 0) or key in ("entries", "duplicates"):
            print(f"{key:>19}: {info[key]}")
    if info["advice"]:
        print(f"{'what to do':>19}: {info['advice']}")
    if info["edited_as"]:
        print(f"{'edited as':>19}: " + ", ".join(map(str, info["edited_as"])))
    if info["batch_messages"]:
        print(_batch_messages_line(info))
    if info["resent_as"]:
        later = ", ".join(f"import {r['id']} ({r['status']})" for r in info["resent_as"])
        print(f"{'resent as?':>19}: {later}: the same message or file name from this source, "
              f"filed since; if it was the correction, close this one (imports discard "
              f"{info['id']} --reason 'resent as import {info['resent_as'][0]['id']}')")
    for w in info.get("warnings") or []:
        print(f"{'warning':>19}: {w}")
    for a in info["application_acks"]:
        print(f"{'application ACK':>19}: {a['code']} {a['state']}: {a['meaning']}")
    if info["attempts"]:
        _table("Attempts", ["started", "trigger", "code version", "status", "code", "message"],
               [(a["started_at"][:19], a["trigger"], a["code_version"], a["status"],
                 a["error_code"], a["error_message"]) for a in info["attempts"]])
    if info["produced"]:
        _table(f"Entries ({len(info['produced'])})",
               ["entry", "patient", "type", "code", "system", "v", "current", "status",
                "relation", "from"],
               [(e["entry_id"], e["patient_id"], e["type"], e["code"], e["system"],
                 e["version"], e["current"], e["status"], e["relation"], e["source_ref"])
                for e in info["produced"]])
    if info["audit"]:
        _table("Audit", ["at", "who", "action", "patient", "reason"],
               [(a["at"][:19], a["actor"], a["action"], a["patient_id"], a["reason"])
                for a in info["audit"]])
    if raw is not None:
        _print_raw(raw, args.output)
    return EXIT_OK


def _batch_messages_line(info: dict) -> str:
    """A batch file's messages: ids and statuses, bounded, and how to list them all."""
    import shlex

    shown, count = info["batch_messages"], info["batch_messages_count"]
    listed = ", ".join(f"{m['id']} ({m['status']}"
                       + (f" {m['error_code']})" if m["error_code"] else ")") for m in shown)
    more = f" ... and {count - len(shown)} more" if count > len(shown) else ""
    how = (f"; all of them: dmp-ingest imports list --file {shlex.quote(info['file_name'])}"
           if info.get("file_name") else "")
    return f"{'messages':>19}: {count}: {listed}{more}{how}"


def _read_raw(ctx, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """The archived bytes (patient data): audited; --output writes the bytes to a file."""
    from pipelines.admin import AdminError, read_raw
    from pipelines.archive import ArchiveUnavailable

    try:
        raw = read_raw(ctx.engine, ctx.archive, args.id, _actor(args), reason=args.reason,
                       settings=ctx.settings)
    except AdminError as exc:
        raise UserError(str(exc)) from None
    except ArchiveUnavailable as exc:
        raise Unavailable(str(exc)) from None
    if args.output:
        try:
            Path(args.output).write_bytes(raw.data)
        except OSError as exc:
            raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    return raw


def _print_raw(raw, output: str | None) -> None:  # noqa: ANN001
    if output:
        print(f"raw content ({len(raw.data)} bytes) written to {output}")
    elif raw.text is None:
        print(f"raw content: {raw.format} ({len(raw.data)} bytes, binary); use --output FILE")
    else:
        print(f"--- raw content ({raw.format}, {raw.charset}, {len(raw.data)} bytes) ---")
        print(raw.text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n"))


def _rerun(ctx, ids: list[int] | None, args: argparse.Namespace | None = None,  # noqa: ANN001
           progress: bool = True, by: argparse.Namespace | None = None) -> dict:
    """Run the rerun flow (filter options from ``args``), with a progress bar on a TTY.
    ``by``: the arguments of the action that starts it (assign, edit): its rerun is audited
    under the same --as and --reason (it was under DMP_ADMIN or the OS user)."""
    from pipelines.archive import ArchiveUnavailable
    from pipelines.filters import FilterError

    params: dict = {"ids": ids or None}
    if by is not None:
        params.update(actor=_actor(by).name, reason=by.reason)
    if args is not None:
        params.update(status=args.status, source=args.source, channel=args.channel,
                      stage=args.stage, code=args.code, since=args.since, until=args.until,
                      patient=args.patient, warnings=args.warnings, file=args.file,
                      actor=_actor(args).name, reason=args.reason)
    try:
        with _prefect_api(), _give_back_if_interrupted("rerun"):
            from flows import rerun_imports

            if not progress or not sys.stderr.isatty():
                return rerun_imports(**params)
            return _with_progress(ctx, ids, args, lambda: rerun_imports(**params))
    except FilterError as exc:
        raise UserError(str(exc)) from None
    except ArchiveUnavailable as exc:
        raise Unavailable(str(exc)) from None


@contextmanager
def _give_back_if_interrupted(trigger: str) -> Iterator[None]:
    """Ctrl-C in a rerun or an ingest: the batch in hand is given back at once (it stayed
    'processing' until its lease expired, taken by no one), and the operator is told what
    is left and how to finish it, in one line, instead of a bare exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        from flows import give_back_claims

        try:
            given = give_back_claims(trigger)
        except Exception:  # noqa: BLE001 - the store went away too: the leases expire
            given = None
        back = ("the imports in hand could not be given back (they are taken again when "
                "their lease expires)" if given is None else
                f"{given} import(s) in hand given back, nothing half-filed")
        print(f"dmp-ingest: interrupted: {back}; what was filed stays filed, what was not "
              "waits as 'received': `dmp-ingest serve` processes it, or `dmp-ingest imports "
              "rerun --status received` now", file=sys.stderr)
        raise


def _with_progress(ctx, ids, args, run):  # noqa: ANN001, ANN202
    """A rich progress bar fed by the ledger (attempts recorded by the rerun) while the flow
    runs in this thread."""
    import threading

    from rich.console import Console
    from rich.progress import Progress

    from pipelines.ledger import now
    from pipelines.report import rerun_progress
    from pipelines.rerun import plan_rerun, targets

    wanted = targets(ctx.engine, ids, _filter(ctx, args) if args is not None else None)
    total = len(plan_rerun(ctx.engine, None, wanted).to_process)
    if total < PROGRESS_MIN:
        return run()
    started, stop = now(), threading.Event()
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("rerun", total=total)

        def poll() -> None:
            while not stop.wait(0.5):
                bar.update(task, completed=rerun_progress(ctx.engine, started))

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            return run()
        finally:
            stop.set()
            thread.join()


def _waiting_for(ctx, ref: str) -> list[int]:  # noqa: ANN001
    """``--waiting-for PATIENT``: the quarantined imports that name this dossier's INS or
    one of its local identifiers; the ones nothing can attribute (scans, no INS stated) are
    named on stderr, to be rerun or assigned by id."""
    from dossiers.patients import find_by_reference
    from pipelines.waiting import scan

    with ctx.engine.connect() as conn:
        patient = find_by_reference(conn, ref)
    if patient is None:
        raise UserError(f"no dossier {ref}")
    found, unsearchable = scan(ctx, [patient.id])
    waiting = found.get(patient.id, [])
    if not waiting:
        print(f"dmp-ingest: no quarantined import names the INS of dossier {ref}"
              + ("" if patient.ins else " (it has none)") + " nor one of its local identifiers",
              file=sys.stderr)
    if unsearchable:
        print(f"dmp-ingest: {_unsearchable_line(unsearchable)}", file=sys.stderr)
    return waiting


def _rerun_resolvable(ctx, flt, args: argparse.Namespace) -> int:  # noqa: ANN001
    """``imports rerun --resolvable``: the ids given and the quarantined imports that
    ``imports list --resolvable`` lists with the same options. The filter narrows the scan;
    it selects nothing by itself (with it, every IDENTITY_UNKNOWN_PATIENT import would be
    rerun, not the resolvable ones)."""
    from pipelines.waiting import SCAN_LIMIT, resolvable_imports

    found = resolvable_imports(ctx, flt)
    if found.truncated:
        print(f"dmp-ingest: only the {SCAN_LIMIT} most recent quarantined imports were read: "
              "narrow with --since, --source or --code for the older ones", file=sys.stderr)
    ids = sorted({*args.ids, *found.found})
    if not ids and (unseen := _unseen_code(ctx, flt)) is not None:
        raise UserError(f"nothing to rerun: {unseen}")
    if not ids:
        raise UserError(f"nothing to rerun: none of the {found.scanned} quarantined imports "
                        "read names a dossier now (INS or local identifier)")
    if args.dry_run:
        from pipelines.archive import ArchiveUnavailable
        from pipelines.rerun import dry_run

        try:
            result = dry_run(ctx.engine, ctx.archive, ids, ctx.settings)
        except ArchiveUnavailable as exc:
            raise Unavailable(str(exc)) from None
    else:
        result = _rerun(ctx, ids, None, by=args)
    if args.json:
        _print_json(result)
    else:
        _print_rerun(result)
    return EXIT_USER if result["unknown"] or result["cannot_reprocess"] else EXIT_OK


def _unsearchable_line(ids: list[int]) -> str:
    """The quarantined imports --waiting-for cannot attribute, and what to do with them."""
    shown = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
    return (f"{len(ids)} quarantined import(s) without a dossier state no INS (scanned PDFs, "
            f"local ids or demographics only): {shown}; --waiting-for cannot find them: check "
            "each one (imports show ID --raw --reason ...), then rerun it (imports rerun ID) "
            "or assign it (imports assign ID --patient ... --reason ...); one stating a local "
            "id is listed by imports list --resolvable once a dossier holds that id")


def cmd_imports_rerun(args: argparse.Namespace) -> int:
    ctx = _context()
    flt = _filter(ctx, args)
    if args.waiting_for:
        args.ids = sorted({*args.ids, *_waiting_for(ctx, args.waiting_for)})
        if not args.ids and flt.is_empty():
            raise UserError("nothing to rerun: no import waits for this dossier")
    if args.resolvable:
        return _rerun_resolvable(ctx, flt, args)
    if not args.ids and flt.is_empty():
        raise UserError("nothing to rerun: give import ids or a filter (--status ...)")
    if not args.ids and (unseen := _unseen_code(ctx, flt)) is not None:
        raise UserError(f"nothing to rerun: {unseen}")
    if args.dry_run:  # a read: no Prefect run needed
        from pipelines.archive import ArchiveUnavailable
        from pipelines.rerun import dry_run, targets

        try:
            result = dry_run(ctx.engine, ctx.archive, targets(ctx.engine, args.ids, flt),
                             ctx.settings)
        except ArchiveUnavailable as exc:
            raise Unavailable(str(exc)) from None
    else:
        result = _rerun(ctx, list(args.ids), args)
    if args.json:
        _print_json(result)
    else:
        _print_rerun(result)
    code = EXIT_OK
    if result["unknown"]:  # after the others were done: what could be was
        print("dmp-ingest: no import " + ", ".join(map(str, result["unknown"])),
              file=sys.stderr)
        code = EXIT_USER
    if result["cannot_reprocess"]:
        # The archived object is missing or corrupt: the rerun could not replay these, and a
        # script that reruns by filter must not take that for success.
        ids = ", ".join(str(item["id"]) for item in result["cannot_reprocess"])
        print(f"dmp-ingest: cannot reprocess {ids}: archived object missing or corrupt",
              file=sys.stderr)
        code = EXIT_USER
    return code


def _print_rerun(result: dict) -> None:
    verb = "would reopen" if result["dry_run"] else "reopened"
    print(f"rerun of {result['requested']} import(s): {verb} {len(result['reopen'])}, "
          f"{len(result['queued'])} already queued")
    for left in result["left_alone"]:
        print(f"  left alone: {left['count']} {left['reason']}")
    for item in result["cannot_reprocess"]:
        print(f"  import {item['id']} {item['reason']}")
    if result["unknown"]:
        print("  not in the ledger: " + ", ".join(map(str, result["unknown"])))
    for note in result.get("notes", ()):
        print(f"  note: {note}")
    if not result["dry_run"]:
        done = ", ".join(f"{n} {s}" for s, n in sorted(result["outcomes"].items()))
        print(f"outcomes: {done or 'nothing processed'}")
        pending = ("failed", "quarantined", "held", "received", "processing")
        told = [r for r in result.get("results", ()) if r["status"] in pending]
        for r in told[:RERUN_LINES]:
            if r["status"] in ("failed", "quarantined", "held"):
                where = f" at {r['error_location']}" if r["error_location"] else ""
                print(f"  import {r['id']} {r['status']} again: {r['error_code']}{where}: "
                      f"{r['error_message']}")
            elif r["status"] in ("received", "processing"):
                print(f"  import {r['id']} {r['status']}: the service's workers have it "
                      "(`imports show` later)")
        if len(told) > RERUN_LINES:
            print(f"  ... and {len(told) - RERUN_LINES} more (--json lists them all; "
                  "`imports stats` counts them)")


def cmd_imports_assign(args: argparse.Namespace) -> int:
    from pipelines.admin import AdminError, assign

    ctx = _context()
    try:
        patient_id = assign(ctx.engine, args.id, args.patient, _actor(args), args.reason,
                            archive=ctx.archive)
    except AdminError as exc:
        raise UserError(str(exc)) from None
    result = _rerun(ctx, [args.id], progress=False, by=args)
    return _print_after(args, {"import": args.id, "patient_id": patient_id, **result},
                        f"import {args.id} assigned to dossier {patient_id}")


def _print_after(args: argparse.Namespace, result: dict, head: str) -> int:
    if args.json:
        _print_json(result)
        return EXIT_OK
    done = ", ".join(f"{n} {s}" for s, n in sorted(result["outcomes"].items()))
    print(f"{head}; rerun: {done or 'nothing processed'}")
    return EXIT_OK


def cmd_imports_edit(args: argparse.Namespace) -> int:
    from pipelines.admin import AdminError, edit

    ctx = _context()
    actor = _actor(args)
    if args.from_file:
        try:
            data = Path(args.from_file).read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {args.from_file}: {exc.strerror}") from None
    else:
        data = _edit_in_editor(ctx, args)
    try:
        new_ids = edit(ctx.engine, ctx.archive, args.id, data, actor, reason=args.reason)
    except AdminError as exc:
        raise UserError(str(exc)) from None
    result = _rerun(ctx, new_ids, progress=False, by=args)
    return _print_after(args, {"import": args.id, "new_imports": new_ids, **result},
                        f"import {args.id} edited as import(s) "
                        + ", ".join(map(str, new_ids)))


def _edit_in_editor(ctx, args: argparse.Namespace) -> bytes:  # noqa: ANN001
    """The raw message in $EDITOR (HL7v2 segments one a line), read back in its charset."""
    import shlex
    import subprocess
    import tempfile

    raw = _read_raw(ctx, argparse.Namespace(id=args.id, actor=args.actor, output=None,
                                            reason=args.reason or "edit"))
    if raw.text is None:
        raise UserError(f"import {args.id} is binary ({raw.format}): use --from-file")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    hl7 = raw.format == "hl7v2"
    text = raw.text.replace("\r\n", "\n").replace("\r", "\n") if hl7 else raw.text
    codec = raw.charset if raw.charset and "replacement" not in raw.charset else "utf-8"
    with tempfile.TemporaryDirectory(prefix="dmp-edit-") as tmp:
        path = Path(tmp) / f"import-{args.id}.{'hl7' if hl7 else 'xml'}"
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as exc:
            raise UserError(f"cannot start the editor {editor!r}: {exc.strerror}") from None
        if done.returncode != 0:
            raise UserError(f"the editor exited with code {done.returncode}; nothing stored")
        edited = path.read_text(encoding="utf-8")
    if edited == text:
        raise UserError(f"import {args.id}: no change made in the editor; nothing stored")
    if hl7:
        edited = "\r".join(line for line in edited.splitlines() if line.strip()) + "\r"
    try:
        return edited.encode(codec)
    except (UnicodeEncodeError, LookupError):
        raise UserError(f"the edited text cannot be written in the message's charset "
                        f"({codec})") from None


def cmd_imports_discard(args: argparse.Namespace) -> int:
    from pipelines.admin import AdminError, discard

    ctx = _context()
    try:
        changed = discard(ctx.engine, args.id, _actor(args), args.reason)
    except AdminError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json({"import": args.id, "discarded": changed})
    else:
        print(f"import {args.id} discarded" if changed else
              f"import {args.id} was discarded already")
    return EXIT_OK


# -- check ----------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 ok, 1 warning, 2 critical (Nagios/Icinga plugins; the first line of the text
    output is the status line they show), 3 unknown: the check could not be made (store or
    archive unreachable, settings unusable: a user error here is no WARNING)."""
    try:
        return _check(args)
    except UserError as exc:
        print(f"dmp-ingest: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _check(args: argparse.Namespace) -> int:
    from pipelines.check import check
    from pipelines.silence import say_duration

    for name in ("backlog_minutes", "backlog_critical_minutes"):
        value = getattr(args, name)
        if value is not None and not 0 < value < float("inf"):
            raise UserError(f"--{name.replace('_', '-')}: a number of minutes above 0 "
                            f"expected, not {value}")
    if (args.backlog_minutes is not None and args.backlog_critical_minutes is not None
            and args.backlog_critical_minutes < args.backlog_minutes):
        raise UserError("--backlog-critical-minutes must be at least --backlog-minutes")
    ctx = _context()
    report = check(ctx.engine, ctx.archive, backlog_minutes=args.backlog_minutes,
                   backlog_critical_minutes=args.backlog_critical_minutes,
                   verify_hashes=not args.quick, settings=ctx.settings,
                   archive_scan=not args.no_archive)
    if args.json:
        _print_json(report.as_dict())
        return report.exit_code
    b = report.backlog
    kinds = ", ".join(f"{f.count} {f.code}" for f in report.findings)
    print(f"{report.status.upper()}: {kinds or 'nothing to report'}")
    orphans = "not countable" if report.orphans is None else str(report.orphans)
    print(f"checked {report.imports} import(s), {report.entries} entries, " + (
        "not the archive (--no-archive)" if args.no_archive else
        f"{report.archive_objects_checked} archived object(s); "
        f"{orphans} orphan archive object(s)"))
    oldest = (f"the oldest waiting {say_duration(b['oldest_age_seconds'])}"
              if b["oldest_age_seconds"] is not None else "none waiting")
    print(f"backlog: {b['received']} received ({oldest}; {b['waiting_retry']} waiting for a "
          f"retry), {b['processing']} processing; warning after "
          f"{say_duration(b['warning_minutes'] * 60)}, critical after "
          f"{say_duration(b['critical_minutes'] * 60)}")
    for f in report.findings:
        if f.lines:  # one line per item (a silent source): what the operator acts on
            for line in f.lines:
                print(f"{f.code} ({f.severity}) {line}")
            continue
        shown = ", ".join(map(str, f.ids))
        more = f" (first {len(f.ids)})" if f.count > len(f.ids) else ""
        print(f"{f.code} ({f.severity}): {f.count} {f.what}{more}: {shown}")
    print("consistent" if report.consistent else
          f"inconsistent: {len(report.findings)} kind(s) of finding")
    return report.exit_code


def cmd_professional_add(args: argparse.Namespace) -> int:
    from dossiers.access import AccessError, Principal, register_professional
    from pipelines.audit import Actor

    ctx = _context()
    try:
        done = register_professional(ctx.engine, Principal("admin", Actor.current(args.actor)
                                                           .name),
                                     args.rpps, args.family, args.given, args.role)
    except AccessError as exc:
        raise UserError(exc.message) from None
    if args.json:
        _print_json(done)
    else:
        print(f"professional {done['rpps']} registered ({done['role']})")
    return EXIT_OK


def cmd_professional_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from dossiers.schema import professionals

    ctx = _context()
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(professionals).order_by(professionals.c.rpps)).all()
    found = [{"rpps": r.rpps, "family": r.family, "given": r.given, "role": r.role}
             for r in rows]
    if args.json:
        _print_json(found)
    else:
        _table(f"Professionals ({len(found)})", ["rpps", "name", "role"],
               [(f["rpps"], " ".join(filter(None, (f["given"], f["family"]))), f["role"])
                for f in found])
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from dossiers.audit import verify

    ctx = _context()
    chain = None
    if args.patient is not None:
        # the dossier named (INS or id) must exist: an unknown one, or an INS taken for an
        # id, would verify an empty chain and print "intact" about nothing
        from dossiers.patients import find_by_reference

        with ctx.engine.connect() as conn:
            patient = find_by_reference(conn, args.patient)
        if patient is None:
            raise UserError(f"no dossier {args.patient}")
        chain = patient.id
    result = verify(ctx.engine, chain=chain)
    if args.json:
        _print_json({"ok": result.ok, "rows": result.rows, "chains": result.chains,
                     "heads_digest": result.heads_digest(),
                     "breaks": [{"chain": b.chain, "seq": b.seq, "row_id": b.row_id,
                                 "problem": b.problem} for b in result.breaks]})
    else:
        print(f"checked {result.rows} audit row(s) in {result.chains} chain(s)")
        for b in result.breaks[:200]:
            print(f"broken: {b.describe()}")
        if len(result.breaks) > 200:
            print(f"... and {len(result.breaks) - 200} more")
        print(f"heads digest {result.heads_digest()} (keep it outside the store)")
        print("intact" if result.ok else f"TAMPERED: {len(result.breaks)} break(s)")
    return EXIT_OK if result.ok else EXIT_USER


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
    http = {k: v for k, v in (("host", args.http_host), ("port", args.http_port))
            if v is not None}
    if http:
        ctx.settings = dataclasses.replace(
            ctx.settings, http=dataclasses.replace(ctx.settings.http, **http))
    polls = not args.no_pollers and bool(ctx.settings.folders or ctx.settings.buckets)
    if args.no_mllp and args.no_process and args.no_http and not polls:
        raise UserError("nothing to serve: --no-mllp, --no-http and --no-process, and no "
                        "folder or bucket source to poll")
    try:
        counters = asyncio.run(serve(ctx, mllp=not args.no_mllp, process=not args.no_process,
                                     pollers=not args.no_pollers, http=not args.no_http))
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


# -- token ----------------------------------------------------------------------------------
def cmd_token_mint(args: argparse.Namespace) -> int:
    """A signed API token, for tests, demos and the senders' configuration. Audited (who
    handed a key to whom) before it is printed: no trace, no token."""
    from api.tokens import claims_of, mint
    from pipelines.audit import record_token
    from pipelines.settings import SettingsError, load_settings

    try:
        settings = load_settings()
        token = mint(settings, args.scope, subject=args.name, source=args.source,
                     rpps=args.rpps, role=args.role, patient=args.patient,
                     representative=args.representative, ttl=args.ttl)
    except (ValueError, SettingsError, OSError) as exc:
        raise UserError(f"token: {exc}") from None
    claims = claims_of(settings, token)
    record_token(_context().engine, _actor(args), claims)
    if args.json:  # as every other command has it, for scripts that provision senders
        _print_json({"token": token, "scope": claims["scope"], "subject": claims["sub"],
                     "expires_at": datetime.fromtimestamp(claims["exp"], UTC).isoformat()})
    else:
        print(token)
    return EXIT_OK


# -- dossiers -------------------------------------------------------------------------------
def cmd_dossier_create(args: argparse.Namespace) -> int:
    from pipelines.dossier_admin import DossierInput, create_dossiers, read_dossiers_csv

    ctx = _context()
    if args.from_csv:
        try:
            items = read_dossiers_csv(args.from_csv)
        except OSError as exc:
            raise UserError(f"cannot read {args.from_csv}: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
    else:
        missing = [n for n in ("family", "given", "birth_date", "sex") if not getattr(args, n)]
        if missing:
            raise UserError("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
        items = [DossierInput(ins=args.ins, family=args.family, given=args.given,
                              birth_date=args.birth_date, sex=args.sex)]
    try:
        created = create_dossiers(ctx.engine, items, skip_existing=bool(args.from_csv),
                                  actor=_actor(args))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # the quarantined imports that were waiting for these dossiers: told, not filed (the
    # operator reruns them: `imports rerun --waiting-for`, the identity decided again); those
    # no INS attributes (scans, no INS stated) told apart, to be checked one by one
    from pipelines.waiting import scan

    waiting, unsearchable = scan(ctx, created) if created else ({}, [])
    if args.json:
        _print_json({"created": created,
                     "waiting": {str(pid): ids for pid, ids in sorted(waiting.items())},
                     "unsearchable": unsearchable})
        return EXIT_OK
    print(f"created {len(created)} dossier(s): " + ", ".join(map(str, created)))
    for pid, ids in sorted(waiting.items()):
        print(f"dossier {pid}: {len(ids)} quarantined import(s) name it: "
              + ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
              + f"; rerun them with `dmp-ingest imports rerun --waiting-for {pid}`")
    if unsearchable:
        print(_unsearchable_line(unsearchable))
    return EXIT_OK


def cmd_dossier_show(args: argparse.Namespace) -> int:
    from pipelines.report import show_dossier

    ctx = _context()
    dossier = show_dossier(ctx.engine, args.patient, history=args.history)
    if dossier is None:
        raise UserError(f"no dossier {args.patient}")
    from pipelines.audit import Actor, record

    with ctx.engine.begin() as conn:  # an operator's read is traced like anyone's
        record(conn, Actor.current(args.actor), "dossier.show",
               patient_id=dossier["patient"]["id"],
               details={"entries": len(dossier["entries"]), "history": args.history})
    if args.json:
        _print_json(dossier)
        return EXIT_OK
    p = dossier["patient"]
    print(f"dossier {p['id']}: {p['family']} {p['given']}, born {p['birth_date']}, "
          f"sex {p['sex']}, INS {p['ins'] or '-'}")
    if p["merged_into"] is not None:
        print(f"merged into dossier {p['merged_into']} (closed): its identifiers and entries "
              f"are there; `dmp-ingest dossier show {p['merged_into']}`")
    if p.get("deceased"):
        print(f"deceased{' ' + p['deceased_at'] if p.get('deceased_at') else ''} "
              "(recorded from the hospital's ADT)")
    opposed = [what for what, key in (("break-glass", "break_glass_opposed"),
                                      ("SAMU regulation", "regulation_opposed")) if p.get(key)]
    if opposed:
        print(f"the patient opposes emergency access: {', '.join(opposed)}")
    _table(f"Entries ({len(dossier['entries'])})",
           ["type", "code", "system", "display", "value", "unit", "range", "flag", "status",
            "effective", "v"],
           [(e["type"], e["code"], e["system"], (e["display"] or "")[:40],
             (e["value"] or "")[:40], e["unit"], e["reference_range"], e["interpretation"],
             e["status"] + ("" if e["mapped"] else " (unmapped)"), e["effective"],
             e["version"]) for e in dossier["entries"]])
    return EXIT_OK


def cmd_dossier_find(args: argparse.Namespace) -> int:
    """Dossiers by name (and given name, birth date): the ids to assign an import to."""
    from pipelines.dossier_admin import FIND_LIMIT, find_dossiers

    ctx = _context()
    try:
        found, more = find_dossiers(ctx.engine, args.family, given=args.given,
                                    birth_date=args.birth_date, actor=_actor(args),
                                    reason=args.reason)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json({"dossiers": found, "more": more})
        return EXIT_OK
    if not found:
        print("no dossier matches (names compared without accents, case or separators, the "
              "used and the birth name; --given is the start of the given names)")
        return EXIT_OK
    _table(f"Dossiers ({len(found)}{'+' if more else ''})",
           ["id", "family", "given", "birth name", "born", "sex", "INS", "opposed"],
           [(d["id"], d["family"], d["given"], d["birth_family"], d["birth_date"], d["sex"],
             "yes" if d["ins"] else "no", "yes" if d["opposed"] else "") for d in found])
    if more:
        print(f"more than {FIND_LIMIT} dossiers match: only the first {FIND_LIMIT} are listed; "
              "narrow with --given and --birth-date")
    return EXIT_OK


def cmd_dossier_merge(args: argparse.Namespace) -> int:
    """An identity-vigilance operator's merge of two dossiers of one person."""
    from pipelines.dossier_merge import MergeRefusedError, merge_dossiers

    ctx = _context()
    try:
        plan = merge_dossiers(ctx.engine, args.survivor, args.merged, _actor(args),
                              args.reason, dry_run=args.dry_run)
    except MergeRefusedError as exc:
        raise UserError(f"{exc.code}: {exc}") from None
    if args.json:
        _print_json(plan.as_dict())
        return EXIT_OK
    verb = "would move" if plan.dry_run else "moved"
    print(f"dossier {plan.merged} {'would be' if plan.dry_run else 'was'} merged into dossier "
          f"{plan.survivor}: {verb} {plan.identifiers} identifier(s)"
          f"{' and the INS' if plan.ins_moved else ''}, {plan.entries_moved} entr"
          f"{'y' if plan.entries_moved == 1 else 'ies'} ({plan.provenance_links} provenance "
          f"link(s)); {plan.absorbed_same_key + plan.absorbed_same_fact} entr"
          f"{'y' if plan.absorbed_same_key + plan.absorbed_same_fact == 1 else 'ies'} already "
          f"held (same entry: {plan.absorbed_same_key}, same fact by another channel: "
          f"{plan.absorbed_same_fact}) kept once with both links; {plan.imports_refiled} "
          "import(s) now name the surviving dossier")
    if plan.entry_types:
        _table("Entries moved", ["type", "count"], sorted(plan.entry_types.items()))
    if plan.codes:
        _table("Codes moved", ["system|code", "count"], sorted(plan.codes.items()))
    for name, count in sorted(plan.not_moved.items()):
        print(f"not moved: {count} active {name.replace('_', ' ')} of dossier {plan.merged} "
              f"(declare them on dossier {plan.survivor} if they still hold)")
    if not plan.dry_run:
        print("quarantined ADT_MERGE_DOSSIERS imports: `dmp-ingest imports rerun --code "
              "ADT_MERGE_DOSSIERS`")
    return EXIT_OK


def _admin_principal(args: argparse.Namespace):  # noqa: ANN202
    from dossiers.access import Principal
    from pipelines.audit import Actor

    return Principal("admin", Actor.current(args.actor).name)


def cmd_representative_add(args: argparse.Namespace) -> int:
    from dossiers.access import AccessError, declare_representative

    ctx = _context()
    try:
        done = declare_representative(
            ctx.engine, _admin_principal(args), args.patient, subject=args.account,
            family=args.family, given=args.given, quality=args.quality,
            valid_from=args.valid_from, valid_until=args.valid_until)
    except AccessError as exc:
        raise UserError(exc.message) from None
    if args.json:
        _print_json(done)
    else:
        print(f"representative {done['subject']} declared on dossier {done['patient_id']} "
              f"({done['quality']}, from {done['valid_from']} "
              f"until {done['valid_until'] or 'revoked'})")
    return EXIT_OK


def cmd_representative_revoke(args: argparse.Namespace) -> int:
    from dossiers.access import AccessError, revoke_representative

    ctx = _context()
    try:
        done = revoke_representative(ctx.engine, _admin_principal(args), args.patient,
                                     args.account, args.reason)
    except AccessError as exc:
        raise UserError(exc.message) from None
    if args.json:
        _print_json(done)
    else:
        print(f"representative {done['subject']} revoked on dossier {done['patient_id']}")
    return EXIT_OK


def cmd_dossier_emergency_opposition(args: argparse.Namespace) -> int:
    """The patient's opposition to break-glass (and to the SAMU regulating doctor's access),
    set by an operator on the patient's request; audited in the patient's trail."""
    from dossiers.access import AccessError, set_emergency_opposition

    def yes(value: str | None) -> bool | None:
        return None if value is None else value == "yes"

    ctx = _context()
    try:
        done = set_emergency_opposition(ctx.engine, _admin_principal(args), args.patient,
                                        break_glass=yes(args.break_glass),
                                        regulation=yes(args.regulation), reason=args.reason)
    except AccessError as exc:
        raise UserError(f"{exc.code}: {exc.message}") from None
    if args.json:
        _print_json(done)
    else:
        print(f"dossier {done['patient_id']}: break-glass "
              f"{'opposed' if done['break_glass_opposed'] else 'not opposed'}, SAMU "
              f"regulation {'opposed' if done['regulation_opposed'] else 'not opposed'}"
              + (f" (changed: {', '.join(done['changed'])})" if done["changed"]
                 else " (unchanged)"))
    return EXIT_OK


def cmd_dossier_authorizations(args: argparse.Namespace) -> int:
    """The professionals the patient authorised, with each authorisation's end (an operator
    answering the patient); audited in the patient's trail."""
    from dossiers.access import AccessError, list_authorizations

    ctx = _context()
    try:
        found = list_authorizations(ctx.engine, _admin_principal(args), args.patient)
    except AccessError as exc:
        raise UserError(exc.message) from None
    if args.json:
        _print_json(found)
    else:
        _table(f"Authorisations on dossier {found['patient_id']} "
               f"({len(found['authorizations'])})",
               ["rpps", "name", "role", "granted", "until", "in force", "revoked"],
               [(a["rpps"], a["name"] or "-", a["role"] or "-", a["granted_at"],
                 a["valid_until"] or "-", "yes" if a["in_force"] else "no",
                 a["revoked_at"] or "-") for a in found["authorizations"]])
    return EXIT_OK


def cmd_representative_list(args: argparse.Namespace) -> int:
    from dossiers.access import AccessError, Principal, list_representatives

    ctx = _context()
    try:
        found = list_representatives(ctx.engine, Principal("admin", "cli"), args.patient)
    except AccessError as exc:
        raise UserError(exc.message) from None
    if args.json:
        _print_json(found)
    else:
        _table(f"Legal representatives of dossier {found['patient_id']} "
               f"({len(found['representatives'])})",
               ["account", "name", "quality", "from", "until", "in force", "revoked"],
               [(r["subject"], " ".join(filter(None, (r["given"], r["family"]))),
                 r["quality"], r["valid_from"], r["valid_until"] or "-",
                 "yes" if r["in_force"] else "no", r["revoked_at"] or "-")
                for r in found["representatives"]])
    return EXIT_OK


def cmd_dossier_export(args: argparse.Namespace) -> int:
    """The dossier as a FHIR R4 Bundle. An operator's read: every current entry, masked ones
    included, and one audit row written in the same transaction as the read."""
    from datetime import UTC, datetime

    from dossiers.audit import record
    from dossiers.export import (
        attachment_digests,
        load_dossier_rows,
        load_parent_versions,
        load_patient_identifiers,
        load_provenance,
    )
    from dossiers.fhir import to_bundle
    from dossiers.fhir.decimals import bundle_json
    from dossiers.merged import merged_into
    from dossiers.patients import find_by_reference

    ctx = _context()
    actor = "admin:" + _actor(args).name
    out = sys.stdout
    try:
        with ctx.engine.begin() as conn:
            patient = find_by_reference(conn, args.patient)
            if patient is None:
                raise UserError(f"no dossier {args.patient}")
            went = merged_into(conn, patient.id)
            if went is not None:  # a tombstone: nothing of the patient's is left in it
                raise UserError(f"dossier {patient.id} was merged into dossier {went}: "
                                f"export dossier {went}")
            row, rows = load_dossier_rows(conn, patient.id)
            provenance = load_provenance(conn, [r["id"] for r in rows])
            bundle = to_bundle(row, rows, provenance=provenance,
                               versions=load_parent_versions(conn, rows),
                               identifiers=load_patient_identifiers(conn, patient.id),
                               timestamp=datetime.now(UTC),
                               files=attachment_digests(rows, ctx.archive.get))
            if args.output:  # before the audit row: a file we cannot write is no read
                try:
                    out = open(args.output, "w", encoding="utf-8")  # noqa: SIM115
                except OSError as exc:
                    raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
            record(conn, actor, "dossier.export", patient_id=patient.id,
                   details={"format": args.format, "entries": len(rows)})
        out.write(bundle_json(bundle, indent=2))  # the senders' decimal digits kept
        out.write("\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"dossier {patient.id}: {len(rows)} entries written to {args.output}",
              file=sys.stderr)
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------------
MAX_ID = 2**63 - 1  # ledger ids, pages and offsets are BIGINT in the store


def _number(what: str) -> Callable[[str], int]:
    """An argparse type for an import id, a page size, an offset: a whole number the store
    can hold. A number pasted with extra digits ('imports show 99999999999999999999')
    reached the database and came back as an OverflowError traceback; it is a usage error
    (exit 2) saying what was expected, as 'abc' is. Below 1 (or 0) stays the command's to
    say (exit 1, 'no import 0')."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} expected, not {text!r}") from None
        if abs(value) > MAX_ID:
            raise argparse.ArgumentTypeError(f"{what} expected, at most {MAX_ID}; not {text}")
        return value
    parse.__name__ = what
    return parse


IMPORT_ID = _number("an import id")


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", help="received, processing, deposited, duplicate, failed, "
                   "quarantined, held (a draft waiting for its signature), split, discarded")
    p.add_argument("--source", help="source id: the declared sender, folder or bucket it came "
                   "through (`ingest --source`, default 'files')")
    p.add_argument("--channel", help="file, folder, mllp, s3, http, edit")
    p.add_argument("--stage", help="where it stopped: intake, archive, parse, normalize, "
                   "identity, dedupe, deposit, consent (an ADT applied), process, store")
    p.add_argument("--code", help="error code (e.g. CODE_UNMAPPED), or a family of codes "
                   "with '*' and '?' as in a shell ('CDA_*')")
    p.add_argument("--since", help="received at or after: 2026-11-25, 2026-11-25T08:00, 24h, 7d")
    p.add_argument("--until", help="received before (same forms)")
    p.add_argument("--patient", help="filed in (or assigned to) this dossier: INS or id")
    p.add_argument("--file", help="the file name it came under, case ignored ('*' and '?' as "
                   "in a shell, e.g. 'CR_202611*.hl7')")
    p.add_argument("--warnings", action="store_true",
                   help="only imports with warnings (filed, yet something was doubtful)")


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
    p = imports.add_parser("list", help="list imports (filters, sorting)")
    _filter_options(p)
    p.add_argument("--warning", metavar="CODE",
                   help="only imports a warning of which names CODE: a document carried in "
                   "an HL7v2 message and filed unread (e.g. CDA_DTD_FORBIDDEN, PDF_ENCRYPTED), "
                   "answered AA with a warning ERR")
    p.add_argument("--sort", default="-id",
                   help="id, received, updated, status, source, code, stage, attempts; "
                   "'-' first for descending (default -id: newest first)")
    p.add_argument("--limit", type=_number("a page size"), default=200,
                   help="rows per page (default 200)")
    p.add_argument("--group-by", dest="group_by", metavar="KEYS",
                   help="count per code, source, status, stage or channel (comma-separated: "
                   "'code,source'), the largest group first, with its first and last "
                   "import and the options that select it (for rerun)")
    p.add_argument("--offset", type=_number("an offset"), default=0,
                   help="rows skipped: the next page starts at --offset + --limit")
    p.add_argument("--resolvable", action="store_true",
                   help="only quarantined imports (no dossier found) whose message now names "
                   "a dossier (INS or local identifier), with its id: read from the archive, "
                   "the most recent first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_list)
    p = imports.add_parser("stats", help="counts per status and per error code")
    _filter_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_stats)
    p = imports.add_parser("show", help="one import: error and what to do, attempts, entries, "
                           "raw content")
    p.add_argument("id", type=IMPORT_ID)
    p.add_argument("--raw", action="store_true",
                   help="print the archived message (patient data: the access is audited)")
    p.add_argument("--output", help="with --raw: write the archived bytes to this file")
    p.add_argument("--reason", help="why the import is read (kept in the audit trail of the "
                   "patients it concerns)")
    p.add_argument("--as", dest="actor", help="who is reading (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_show)
    p = imports.add_parser("rerun", help="replay imports from the archive (ids or a filter)")
    p.add_argument("ids", nargs="*", type=IMPORT_ID,
                   help="import ids (with filter options too: both are rerun)")
    _filter_options(p)
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="say what would be reopened, left alone (and why), not reprocessable")
    p.add_argument("--waiting-for", dest="waiting_for", metavar="PATIENT",
                   help="the quarantined imports (no dossier found) that name this dossier's "
                   "INS or one of its local identifiers: after `dossier create`")
    p.add_argument("--resolvable", action="store_true",
                   help="the quarantined imports (no dossier found) whose message now names a "
                   "dossier, as `imports list --resolvable` with the same options lists them")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    p.add_argument("--as", dest="actor", help="who reruns (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_rerun)
    p = imports.add_parser("assign", help="file a quarantined import in a dossier, then rerun")
    p.add_argument("id", type=IMPORT_ID)
    p.add_argument("--patient", required=True, help="INS or dossier id")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p.add_argument("--as", dest="actor", help="who decides (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_assign)
    p = imports.add_parser("edit", help="correct a message ($EDITOR or --from-file), rerun "
                           "it as a new import; the original is kept")
    p.add_argument("id", type=IMPORT_ID)
    p.add_argument("--from-file", dest="from_file", help="the corrected message")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    p.add_argument("--as", dest="actor", help="who edits (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_edit)
    p = imports.add_parser("discard", help="close an import deliberately (bytes kept)")
    p.add_argument("id", type=IMPORT_ID)
    p.add_argument("--reason", required=True, help="why (kept on the import and audited)")
    p.add_argument("--as", dest="actor", help="who decides (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_imports_discard)

    p = sub.add_parser("check", help="consistency of ledger, archive and dossiers, the "
                       "backlog and silent sources (read-only); exit 0 ok, 1 warning, "
                       "2 critical, 3 unknown")
    p.add_argument("--backlog-minutes", dest="backlog_minutes", type=float,
                   help="a warning for 'received' rows older than this (default: [check] "
                   "backlog_minutes, 60)")
    p.add_argument("--backlog-critical-minutes", dest="backlog_critical_minutes", type=float,
                   help="critical once the oldest waits longer than this (default: [check] "
                   "backlog_critical_minutes, 240)")
    p.add_argument("--quick", action="store_true",
                   help="check that archived objects exist, without re-reading them")
    p.add_argument("--no-archive", dest="no_archive", action="store_true",
                   help="leave the archive alone (a probe every few minutes: the ledger, "
                   "the dossiers, the backlog and the silent sources only)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("serve", help="the long-running service: MLLP listener, HTTP API and "
                       "processing")
    p.add_argument("--mllp-host", dest="mllp_host", help="listen address (DMP_MLLP_HOST)")
    p.add_argument("--mllp-port", dest="mllp_port", type=int,
                   help="listen port (DMP_MLLP_PORT, default 2575; 0 picks a free one)")
    p.add_argument("--ack-mode", dest="ack_mode", choices=["accept", "application"],
                   help="AA once stored (accept, default) or once processed (application)")
    p.add_argument("--no-mllp", dest="no_mllp", action="store_true",
                   help="do not listen for MLLP")
    p.add_argument("--http-host", dest="http_host",
                   help="HTTP API listen address (DMP_HTTP_HOST, default 127.0.0.1)")
    p.add_argument("--http-port", dest="http_port", type=int,
                   help="HTTP API port (DMP_HTTP_PORT, default 8080; 0 picks a free one)")
    p.add_argument("--no-http", dest="no_http", action="store_true",
                   help="do not serve the HTTP API")
    p.add_argument("--no-process", dest="no_process", action="store_true",
                   help="only receive; leave processing to other workers")
    p.add_argument("--no-pollers", dest="no_pollers", action="store_true",
                   help="do not poll the declared [folders.*] and [buckets.*] sources")
    p.set_defaults(func=cmd_serve)

    pro = sub.add_parser("professional", help="professionals who may read dossiers "
                         "(RPPS)").add_subparsers(dest="action", required=True)
    p = pro.add_parser("add", help="register (or update) a professional")
    p.add_argument("--rpps", required=True, help="the 11-digit RPPS number")
    p.add_argument("--family", required=True)
    p.add_argument("--given")
    p.add_argument("--role", required=True, help="médecin, infirmier, pharmacien...")
    p.add_argument("--as", dest="actor", help="who registers (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_professional_add)
    p = pro.add_parser("list", help="the registered professionals")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_professional_list)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="action", required=True)
    p = audit.add_parser("verify", help="recompute the audit trail's hash chains and check "
                         "each chain's end against its anchor (audit_heads); exit 1 when a "
                         "row was edited, deleted (the last ones too) or inserted")
    p.add_argument("--patient", help="only this dossier's chain (INS or internal id)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_verify)

    prefect = sub.add_parser("prefect", help="the warm local Prefect server the commands use "
                             "when no PREFECT_API_URL is set").add_subparsers(
        dest="action", required=True)
    for action, text in (("status", "is it running, where"), ("stop", "stop it now")):
        p = prefect.add_parser(action, help=text)
        p.set_defaults(func=cmd_prefect)

    token = sub.add_parser("token", help="HTTP API tokens").add_subparsers(
        dest="action", required=True)
    p = token.add_parser("mint", help="print a signed token (tests, demos, senders)")
    p.add_argument("--scope", required=True,
                   choices=["sender", "professional", "patient", "admin", "representative"])
    p.add_argument("--source", help="sender: its declared source id")
    p.add_argument("--rpps", help="professional: RPPS number (11 digits)")
    p.add_argument("--role", help="professional: médecin, infirmier, biologiste...")
    p.add_argument("--patient", help="patient: the dossier's internal id")
    p.add_argument("--representative",
                   help="representative: their account id (as declared on dossiers)")
    p.add_argument("--name", help="admin: who (also the subject of other scopes)")
    p.add_argument("--ttl", type=int, default=3600, help="seconds of validity (default 3600)")
    p.add_argument("--as", dest="actor", help="who mints it (default DMP_ADMIN, OS user); "
                   "kept in the audit trail")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_token_mint)

    db = sub.add_parser("db", help="the store's schema (Alembic migrations)").add_subparsers(
        dest="action", required=True)
    for action, text in (("current", "the store's schema revision and the code's"),
                         ("upgrade", "migrate the store to the code's schema (also done at "
                          "every start)")):
        p = db.add_parser(action, help=text)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_db)

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
    p.add_argument("--as", dest="actor", help="who creates (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_create)
    p = dossier.add_parser("show", help="a dossier and its current entries")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--history", action="store_true", help="include superseded versions")
    p.add_argument("--as", dest="actor", help="who is reading (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_show)
    p = dossier.add_parser("find", help="dossiers by name, given name and birth date: ids "
                           "and traits to choose from (e.g. to assign a quarantined import); "
                           "audited")
    p.add_argument("--family", required=True, help="family name, used or birth name "
                   "(accents, case and separators ignored)")
    p.add_argument("--given", help="given name(s), or their start")
    p.add_argument("--birth-date", dest="birth_date", help="YYYY-MM-DD")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail of each "
                   "dossier listed)")
    p.add_argument("--as", dest="actor", help="who is looking (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_find)
    p = dossier.add_parser("export", help="a dossier as a FHIR R4 Bundle (JSON on stdout); an "
                           "operator's read: masked entries included, the read is audited")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--format", choices=["fhir"], default="fhir",
                   help="fhir: a FHIR R4 Bundle of type collection (the only format)")
    p.add_argument("--output", help="write the Bundle to this file instead of stdout")
    p.add_argument("--as", dest="actor", help="who is reading (default DMP_ADMIN, OS user)")
    p.set_defaults(func=cmd_dossier_export)

    p = dossier.add_parser("merge", help="merge a dossier into another of the same person "
                           "(identity vigilance): identifiers, INS and entries move, the merged "
                           "one stays as a closed pointer to the survivor")
    p.add_argument("survivor", help="the surviving dossier (INS or internal id)")
    p.add_argument("merged", help="the dossier merged into it (INS or internal id)")
    p.add_argument("--reason", required=True, help="why (kept in both audit trails)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print what would move (counts, codes), change nothing")
    p.add_argument("--as", dest="actor", help="who merges (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_merge)

    p = dossier.add_parser("emergency-opposition", help="record the patient's opposition to "
                           "break-glass access and/or to the SAMU-Centre 15 regulating doctor's "
                           "access (on the patient's request; audited)")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--break-glass", dest="break_glass", choices=["yes", "no"],
                   help="yes: the patient opposes break-glass; no: no longer")
    p.add_argument("--regulation", choices=["yes", "no"],
                   help="yes: the patient opposes the SAMU regulating doctor's access")
    p.add_argument("--reason", required=True, help="the patient's request (kept in the "
                   "audit trail)")
    p.add_argument("--as", dest="actor", help="who records it (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_emergency_opposition)

    p = dossier.add_parser("authorizations", help="the professionals the patient authorised, "
                           "with each authorisation's end (revoked and ended ones included)")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--as", dest="actor", help="who looks (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dossier_authorizations)

    rep = dossier.add_parser("representative", help="the legal representatives of a minor or "
                             "a protected adult (parents, guardian)").add_subparsers(
        dest="rep_action", required=True)
    p = rep.add_parser("add", help="declare a legal representative on a dossier")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--account", required=True,
                   help="the representative's account id (what their token names)")
    p.add_argument("--family", required=True)
    p.add_argument("--given")
    p.add_argument("--quality", required=True, help="parent, tuteur or mandataire")
    p.add_argument("--from", dest="valid_from", help="first day it holds (default today)")
    p.add_argument("--until", dest="valid_until",
                   help="first day it no longer holds (a minor: their 18th birthday)")
    p.add_argument("--as", dest="actor", help="who declares (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_representative_add)
    p = rep.add_parser("revoke", help="end a legal representation (kept in the history)")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--account", required=True)
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p.add_argument("--as", dest="actor", help="who revokes (default DMP_ADMIN, OS user)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_representative_revoke)
    p = rep.add_parser("list", help="the declarations on a dossier, ended ones included")
    p.add_argument("patient", help="INS or internal id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_representative_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.gc_tuning import tune_for_batches
    from pipelines.logs import configure_logging

    configure_logging()
    args = build_parser().parse_args(argv)
    tune_for_batches()
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
    except BrokenPipeError:
        # whoever read stdout went away (`imports list --json | head`): no traceback, and
        # none at exit either when Python flushes stdout into the closed pipe
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        from pipelines.retry import is_store_outage

        if not is_store_outage(exc):
            raise
        print(f"dmp-ingest: {_outage_line(args, exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        _close_opened()


def _outage_line(args: argparse.Namespace, exc: BaseException) -> str:
    """What to say when the store went away in the middle of a command (a PostgreSQL
    restart or failover during a bulk rerun): a traceback said nothing an operator could act
    on (and its SQL may quote values). What was committed stays; a rerun is idempotent, so
    the same command finishes the job once the store answers."""
    line = (f"the store became unreachable during the command ({type(exc).__name__}): what "
            "was done before stays done; once it answers again (dmp-ingest check), run the "
            "same command again")
    if getattr(args, "func", None) is cmd_imports_rerun:
        line += (" (a rerun changes nothing twice; imports it reopened and did not process "
                 "wait as 'received': `dmp-ingest serve` takes them, or `dmp-ingest imports "
                 "rerun --status received`)")
    return line


if __name__ == "__main__":
    sys.exit(main())

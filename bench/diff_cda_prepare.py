"""Differential of the CDA preparing path between two checkouts: 0 differences expected.

    .venv/bin/python bench/diff_cda_prepare.py --base /tmp/wt-perfbase [--seeds 1-40] [--quick]

Why: a faster parse or normalize that changes a single output is a bug. For every CDA of
/work/shared/corpus/cda, corpus/intl/cda, samples/cda and generated CR-BIO documents
(``cr_bio(n, seed)`` for several sizes and seeds), each checkout (run in its own process
with its own PYTHONPATH) dumps: the normalized message (``normalize_cda``), the prepared row
that filing receives (``prepare_rows``: entries, attachment hashes, fingerprint, keys, facts,
warnings; ``started`` left out, it is the clock) or the outcome decided instead (a parse
error, a quarantine), and, for information, the parsed ``Document``. The normalized and
prepared dumps must be equal; a different ``Document`` is reported but is not a failure (the
model may be built differently as long as nothing read from it changes).

``--dump FILE`` is the child's mode (the parent runs it once per checkout).
An internal error (a bug, or a stale fake row: ``size`` is read before the archive) on
either side fails the run too: two dumps of nothing but internal errors compare equal.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import enum
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
SHARED = Path("/work/shared/corpus")
SIZES = (1, 5, 20, 50, 100, 130)


def canon(obj: Any, depth: int = 0) -> Any:  # noqa: ANN401 - any model object
    """A plain, comparable form of ``obj``: dataclasses (slots ones too) as (class, fields),
    bytes as their sha256, containers recursively; the rest as its repr."""
    if depth > 200:
        return "<deep>"
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, bytes | bytearray | memoryview):
        return ("bytes", len(obj), hashlib.sha256(bytes(obj)).hexdigest())
    if isinstance(obj, enum.Enum):
        return repr(obj)
    if isinstance(obj, _dt.datetime | _dt.date | _dt.time):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__name__,
                tuple((f.name, canon(getattr(obj, f.name, "<unset>"), depth + 1))
                      for f in dataclasses.fields(obj)))
    if isinstance(obj, dict):
        return ("dict", sorted(((repr(k), canon(v, depth + 1)) for k, v in obj.items()),
                               key=lambda kv: kv[0]))
    if isinstance(obj, set | frozenset):
        return ("set", sorted(repr(canon(v, depth + 1)) for v in obj))
    if isinstance(obj, list | tuple):
        return [canon(v, depth + 1) for v in obj]
    if hasattr(obj, "__dict__"):
        return (type(obj).__name__, canon(vars(obj), depth + 1))
    return repr(obj)


def inputs(seeds: range, sizes: tuple[int, ...]) -> list[tuple[str, bytes]]:
    """(name, bytes) of every document of the differential."""
    from samples.generate_cda import cr_bio

    docs: list[tuple[str, bytes]] = []
    for folder in (SHARED / "cda", SHARED / "intl" / "cda", ROOT / "samples" / "cda"):
        for path in sorted(folder.glob("*.xml")):
            docs.append((str(path), path.read_bytes()))
    for seed in seeds:
        for n in sizes:
            docs.append((f"cr_bio({n}, {seed})", cr_bio(n, seed)))
    return docs


class _Archive:
    """The archive of the dump: the documents in memory, by sha256."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return sha

    def get(self, sha: str) -> bytes:
        return self.blobs[sha]


def dump(out: Path, seeds: range, sizes: tuple[int, ...]) -> None:
    """The child: this checkout's outputs for every input, pickled to ``out``."""
    from normalizers.cda import normalize_cda
    from parsers.cda import CdaParseError, parse_cda
    from pipelines.process import Context, prepare_rows
    from pipelines.settings import load_settings

    archive = _Archive()
    home = tempfile.mkdtemp(prefix="diff-cda-")  # no configuration file: the defaults
    ctx = Context(settings=load_settings({"DMP_HOME": home}), engine=None,  # type: ignore[arg-type]
                  archive=archive)
    results: dict[str, tuple[Any, Any, Any]] = {}
    for i, (name, data) in enumerate(inputs(seeds, sizes)):
        try:
            doc = parse_cda(data)
        except CdaParseError as exc:
            parsed: Any = ("CdaParseError", exc.code, str(exc), exc.location)
            normalized: Any = None
        else:
            parsed = canon(doc)
            try:
                normalized = canon(normalize_cda(parse_cda(data), data, "diff", ctx.mappings,
                                                 ctx.settings.source_zone("diff")))
            except Exception as exc:  # noqa: BLE001 - an error is an output too
                normalized = ("error", type(exc).__name__, str(exc))
        row = SimpleNamespace(id=i + 1, sha256=archive.put(data), format="cda",
                              source="diff", size=len(data), assigned_patient_id=None,
                              retries=0)
        prepared, outcomes = prepare_rows(ctx, [row])
        rows = [canon({f.name: getattr(p, f.name) for f in dataclasses.fields(p)
                       if f.name not in ("started", "row")}) for p in prepared]
        decided = {k: canon(v[0]) for k, v in outcomes.items()}
        results[name] = (parsed, normalized, (rows, decided))
    out.write_bytes(pickle.dumps(results))


def run_child(checkout: Path, out: Path, args: argparse.Namespace) -> None:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, str(HERE), "--dump", str(out), "--seeds", args.seeds,
           "--sizes", args.sizes]
    subprocess.run(cmd, cwd=checkout, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, help="the checkout to compare with (e.g. main's)")
    ap.add_argument("--seeds", default="1-40", help="cr_bio seeds, 'first-last'")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    first, _, last = args.seeds.partition("-")
    seeds = range(int(first), int(last or first) + 1)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.dump:
        dump(args.dump, seeds, sizes)
        return 0
    if args.base is None:
        ap.error("--base is required")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "base.pickle", Path(tmp) / "mine.pickle"
        run_child(args.base.resolve(), a, args)
        run_child(ROOT, b, args)
        base, mine = pickle.loads(a.read_bytes()), pickle.loads(b.read_bytes())
    diffs = model = internal = 0
    for name in sorted(set(base) | set(mine)):
        x, y = base.get(name), mine.get(name)
        if x is None or y is None:
            print(f"MISSING {name}")
            diffs += 1
            continue
        if x[1] != y[1]:
            print(f"DIFF normalized {name}")
            diffs += 1
        if x[2] != y[2]:
            print(f"DIFF prepared {name}")
            diffs += 1
        if x[0] != y[0]:
            model += 1
        if "INTERNAL_ERROR" in repr(x[2]) + repr(y[2]):  # equal, but nothing was compared
            print(f"INTERNAL_ERROR {name}")
            internal += 1
    print(f"{len(base)} documents: {diffs} differences in normalized/prepared output; "
          f"{model} parsed Documents differ (informational); {internal} internal errors")
    return 1 if diffs or internal else 0


if __name__ == "__main__":
    raise SystemExit(main())

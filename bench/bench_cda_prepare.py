"""CPU of preparing one CR-BIO (parse + normalize + prepare_rows), as a preparing process does.

    PYTHONPATH=. .venv/bin/python bench/bench_cda_prepare.py [--docs 40] [--repeat 9]
    # A/B, alternated, against another checkout (the figures swing on a shared machine):
    for i in 1 2 3; do
      PYTHONPATH=/tmp/wt-perfbase .venv/bin/python bench/bench_cda_prepare.py
      PYTHONPATH=. .venv/bin/python bench/bench_cda_prepare.py
    done

Why: issue 4's 200 CR-BIO/s on 2 cores is a CPU budget; this prints what a preparing process
(pipelines/prepare_pool.py) spends per document, on the process clock, best of ``--repeat``
passes over ``--docs`` documents (``cr_bio(results, seed)``), with the collector paced as in
the pool (``tune_for_batches``). Pickling the prepared chunk (what the pool sends back) is
shown apart. The code measured is the one on PYTHONPATH (this script does not put its own
checkout first), so the same script times both sides of an A/B.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import tempfile
import time
from types import SimpleNamespace

clock = time.process_time


class _Archive:
    """The documents in memory, by sha256 (no disk read in the figure)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return sha

    def get(self, sha: str) -> bytes:
        return self.blobs[sha]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--results", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--profile", action="store_true", help="cProfile one pass instead")
    args = ap.parse_args(argv)

    import parsers.cda
    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda
    from pipelines.gc_tuning import tune_for_batches
    from pipelines.process import Context, prepare_rows
    from pipelines.settings import load_settings
    from samples.generate_cda import cr_bio

    archive = _Archive()
    settings = load_settings({"DMP_HOME": tempfile.mkdtemp(prefix="bench-cda-")})
    ctx = Context(settings=settings, engine=None, archive=archive)  # type: ignore[arg-type]
    docs = [cr_bio(args.results, s) for s in range(1, args.docs + 1)]
    rows = [SimpleNamespace(id=i + 1, sha256=archive.put(d), format="cda", source="bench",
                            size=len(d), assigned_patient_id=None, retries=0)
            for i, d in enumerate(docs)]
    ctx.mappings  # noqa: B018 - loaded once, outside the figures
    prepared, outcomes = prepare_rows(ctx, rows)
    assert not outcomes and len(prepared) == len(rows), outcomes
    tune_for_batches()
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        prepare_rows(ctx, rows)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0

    def best(fn) -> float:  # noqa: ANN001
        least = float("inf")
        for _ in range(args.repeat):
            t0 = clock()
            fn()
            least = min(least, clock() - t0)
        return least * 1000 / len(docs)

    zone = settings.source_zone("bench")
    parse = best(lambda: [parse_cda(d) for d in docs])
    parsed = [(parse_cda(d), d) for d in docs]
    normalize = best(lambda: [normalize_cda(doc, d, "bench", ctx.mappings, zone)
                              for doc, d in parsed])
    parsed.clear()
    prepare = best(lambda: prepare_rows(ctx, rows))
    chunk = prepare_rows(ctx, rows)
    pickling = best(lambda: pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
    print(f"{parsers.cda.__file__.rsplit('/parsers/', 1)[0]}: CR-BIO {args.results} results, "
          f"{len(docs)} docs, best of {args.repeat}, CPU ms/doc: "
          f"prepare_rows {prepare:.2f} (parse {parse:.2f}, normalize {normalize:.2f}); "
          f"pickling {pickling:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

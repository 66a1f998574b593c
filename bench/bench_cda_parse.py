"""Micro-benchmark of parsers.cda.parse_cda: median ms per document.

    .venv/bin/python bench/bench_cda_parse.py            # 40 CR-BIO of 100 results + corpus
    .venv/bin/python bench/bench_cda_parse.py --profile  # cProfile of the CR-BIO run
    .venv/bin/python bench/bench_cda_parse.py --cpu --normalize  # and normalize_cda after it

Each document is parsed ``--repeat`` times and its best time kept (noise from the machine only
ever adds time); the first figure is the median of those over the documents. The second, the
mean of plain passes over all the documents, also counts what is paid now and then (the cyclic
garbage collector's runs), as a long ingest would.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

clock = time.perf_counter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers.cda import parse_cda  # noqa: E402
from samples.generate_cda import cr_bio  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "cda"
CORPUS_FILES = (
    "BIO-CR-BIO_2021.01_Auto-Presentable.xml",
    "BIO-CR-BIO_2021.01_Electrophorese.xml",
    "ANEST-CR-ANEST_2022.01.xml",
)


def best_ms(data: bytes, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        parse_cda(data)
        best = min(best, clock() - t0)
    return best * 1000


def median_ms(docs: list[bytes], repeat: int) -> float:
    return statistics.median(best_ms(d, repeat) for d in docs)


def mean_ms(docs: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        for d in docs:
            parse_cda(d)
        best = min(best, clock() - t0)
    return best * 1000 / len(docs)


def normalize_ms(docs: list[bytes], repeat: int) -> float:
    """Mean time of normalize_cda over the documents parsed beforehand, best of ``repeat``
    passes (the collector paced as in the preparing pool)."""
    from normalizers.cda import normalize_cda
    from pipelines.gc_tuning import tune_for_batches

    parsed = [(parse_cda(d), d) for d in docs]
    tune_for_batches()
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        for doc, data in parsed:
            normalize_cda(doc, data, "bench")
        best = min(best, clock() - t0)
    return best * 1000 / len(docs)


def report(label: str, docs: list[bytes], repeat: int) -> None:
    print(f"{label}: median {median_ms(docs, repeat):.2f} ms/doc, "
          f"mean {mean_ms(docs, repeat):.2f} ms/doc", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--results", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--cpu", action="store_true", help="time with the process CPU clock")
    ap.add_argument("--normalize", action="store_true",
                    help="also time normalize_cda on the parsed CR-BIO documents")
    args = ap.parse_args(argv)
    if args.cpu:
        global clock
        clock = time.process_time
    docs = [cr_bio(args.results, s) for s in range(1, args.docs + 1)]
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for d in docs:
            parse_cda(d)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return 0
    size = statistics.median(len(d) for d in docs) / 1024
    report(f"CR-BIO {args.results} results ({size:.0f} KB, {len(docs)} docs)", docs, args.repeat)
    if args.normalize:
        print(f"normalize_cda: best mean {normalize_ms(docs, args.repeat):.2f} ms/doc", flush=True)
    for name in CORPUS_FILES:
        path = CORPUS / name
        if path.exists():
            data = path.read_bytes()
            report(f"{name} ({len(data) / 1024:.0f} KB)", [data] * args.docs, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

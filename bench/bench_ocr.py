"""OCR of scanned reports: raw tesseract vs parse_pdf on the same pages; prints figures.

```
.venv/bin/python bench/bench_ocr.py [--pages 20] [--processes 2] [--dpi 300] [--repeat 2]
```

Generates N A4 'scans' at ``dpi`` (a French report page: about 40 lines of 11-pt DejaVu Sans,
slightly rotated, blurred, with noise; as tests/test_pdf_parser.py makes them), saves them as
one image-only PDF (Pillow), then times in the same run:

1. raw tesseract, sequential: ``pytesseract.image_to_data(img, lang='fra', config='--psm 3')``
   on the in-memory images, one after the other;
   (the images are the PDF's pages as pdfium renders them, rendered before timing: the same
   pixels parse_pdf OCRs; a variant feeds them as uncompressed PGM, as parse_pdf does);
2. raw tesseract, P at a time (a thread pool of P: each thread waits on its tesseract
   process; the cheapest way to run P tesseracts at once);
3. ``parse_pdf`` on the PDF with ``processes=1`` (inline: rasterise + OCR page by page);
4. ``parse_pdf`` with ``processes=P``, first with a cold pool (worker start-up included), then
   warm (the module-level pool reused, as in a long-running service).

and prints seconds per page, pages per minute and our overhead over raw tesseract at the same
parallelism: what pdfium rasterisation, the page bytes sent to workers, the text-layer probe
and the result assembly cost on top of tesseract itself.

Measured 2026-11-25 on this 2-CPU machine (shared with other jobs: wall times of the parallel
runs varied by up to 40 % between rounds; the CPU-time line is the load-independent figure),
20 A4 pages at 300 dpi, 17.6 MB PDF, `--repeat 2`, best of each:

| run | s/page | pages/min |
| --- | --- | --- |
| raw tesseract, sequential | 1.79 | 33.4 |
| parse_pdf, processes=1 (inline) | 1.81 | 33.1 |
| raw tesseract, 2 at a time | 0.92-0.99 (best rounds of two runs) | 61-65 |
| parse_pdf, processes=2, warm pool | 0.91-0.95 (two runs) | 63-66 |

Overhead: sequential +0.9 % wall, +1.8 % CPU over raw pytesseract (+3 to +4 % over raw
tesseract fed the same uncompressed PGM, i.e. rasterising + probing the text layer costs about
0.05-0.1 s per page); 2 processes: within noise of raw tesseract at the same parallelism
(-0.8 % and -11 % vs the PGM variant in two runs). Target < 15 %: met. Pool start-up 0.15-0.17 s,
paid once per process (a per-document pool would pay it on every document). Before tesseract
was limited to one OpenMP thread (OMP_THREAD_LIMIT=1), one page took 13.5 s instead of 1.7 s.

Re-measured 2026-11-25 12:00 UTC once parse_pdf asked tesseract for Sauvola binarisation and
dropped specks (the raw runs keep tesseract's defaults: they are the floor), the machine loaded
by another job (wall times unreliable): CPU +3.9 % sequential over raw pytesseract, about what
Sauvola costs tesseract itself; 2 processes warm 0.90 s/page (67 pages/min) vs raw 1.04.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytesseract  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402
from pytesseract import Output  # noqa: E402

import parsers.pdf as pdfmod  # noqa: E402
from parsers.pdf import PdfLimits, parse_pdf  # noqa: E402
from parsers.pdf._ocr import render_page  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ("compte rendu échographie abdominale foie taille normale vésicule biliaire alithiasique "
         "voies biliaires intra hépatiques extra non dilatées pancréas rate reins lésion "
         "focale épanchement péritonéal conclusion examen réalisé le patient présente douleur "
         "hypochondre droit depuis trois semaines sans fièvre contrôle échographique dans six "
         "mois médecin radiologue Hélène Gérard LEFÈVRE BÉRANGER née mesure 12,5 cm 14/03/1968"
         ).split()


def make_page(n: int, dpi: int) -> Image.Image:
    rng = random.Random(n)
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    size = round(11 / 72 * dpi)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, size) if Path(FONT).exists() else \
        ImageFont.load_default(size=size)
    y = round(0.8 * dpi)
    draw.text((round(0.8 * dpi), y), f"Compte rendu d'échographie abdominale - page {n + 1}",
              fill=20, font=font)
    y += size * 3
    while y < height - dpi:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 11)))
        draw.text((round(0.8 * dpi), y), line[:1].upper() + line[1:], fill=20, font=font)
        y += round(size * 1.7)
    img = img.rotate(rng.uniform(-0.8, 0.8), resample=Image.BICUBIC, fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(0.7))
    px = img.load()
    for _ in range(width * height // 400):
        px[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 255))
    return img


def raw_ocr_pgm(img: Image.Image) -> int:
    """Raw tesseract fed an uncompressed PGM instead of pytesseract's PNG (as parse_pdf does):
    isolates what our own work costs."""
    img = img.copy()
    img.format = "PPM"
    return raw_ocr(img)


def raw_ocr(img: Image.Image) -> int:
    d = pytesseract.image_to_data(img, lang="fra", config="--psm 3", output_type=Output.DICT)
    return sum(1 for t, c in zip(d["text"], d["conf"], strict=True)
               if t.strip() and float(c) >= 0)


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (the tesseract processes it
    ran itself; not those of pool workers, which are the forkserver's children)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(label: str, pages: int, fn, results: dict, cpu: dict | None = None) -> float:  # noqa: ANN001
    started, cpu_started = time.perf_counter(), _cpu()
    words = fn()
    seconds = time.perf_counter() - started
    results[label] = seconds
    extra = ""
    if cpu is not None:
        cpu[label] = _cpu() - cpu_started
        extra = f"  CPU {cpu[label] / pages:5.2f} s/page"
    print(f"{label:<42} {seconds:7.2f} s  {seconds / pages:5.2f} s/page  "
          f"{60 * pages / seconds:6.1f} pages/min  ({words} words){extra}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds, best kept")
    args = parser.parse_args()
    n, p, dpi = args.pages, args.processes, args.dpi
    os.environ["OMP_THREAD_LIMIT"] = "1"  # same for both sides (our workers set it too)

    started = time.perf_counter()
    images = [make_page(i, dpi) for i in range(n)]
    pdf_path = Path(f"/tmp/bench_ocr_{n}p_{dpi}dpi.pdf")
    images[0].save(pdf_path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    data = pdf_path.read_bytes()
    # Raw tesseract gets the very pixels parse_pdf will OCR: the PDF's pages as pdfium renders
    # them (the scans went through JPEG in the PDF), rendered here, outside the timings.
    images = [render_page(data, i, dpi)[0] for i in range(n)]
    print(f"{n} A4 scans at {dpi} dpi ({images[0].size[0]}x{images[0].size[1]} px), "
          f"PDF {len(data) / 1e6:.1f} MB, made in {time.perf_counter() - started:.1f} s; "
          f"{os.cpu_count()} CPUs, {p} processes\n", flush=True)
    limits = dict(dpi=dpi, timeout_seconds=3600.0, page_timeout_seconds=600.0)
    r: dict[str, float] = {}
    c: dict[str, float] = {}

    def ours(processes: int):  # noqa: ANN202
        def run() -> int:
            doc = parse_pdf(data, PdfLimits(processes=processes, **limits))
            assert all(pg.source == "ocr" for pg in doc.pages)
            return sum(len(pg.words) for pg in doc.pages)
        return run

    threads = ThreadPoolExecutor(p)
    pdfmod.shutdown_pools()
    timed(f"parse_pdf, processes={p}, cold pool", n, ours(p), r)  # pool start-up included
    runs = [("raw tesseract, sequential", lambda: sum(map(raw_ocr, images)), True),
            ("raw tesseract, sequential, PGM input", lambda: sum(map(raw_ocr_pgm, images)),
             True),
            ("parse_pdf, processes=1 (inline)", ours(1), True),
            (f"raw tesseract, {p} at a time", lambda: sum(threads.map(raw_ocr, images)), False),
            (f"raw tesseract, {p} at a time, PGM input",
             lambda: sum(threads.map(raw_ocr_pgm, images)), False),
            (f"parse_pdf, processes={p}, warm pool", ours(p), False)]
    # Interleaved rounds, best of each kept: the machine may be shared, and a neighbour's
    # burst should not be read as our overhead.
    for round_ in range(args.repeat):
        print(f"-- round {round_ + 1}/{args.repeat}", flush=True)
        for label, fn, with_cpu in runs:
            rr: dict[str, float] = {}
            cc: dict[str, float] = {}
            timed(label, n, fn, rr, cc if with_cpu else None)
            r[label] = min(r.get(label, float("inf")), rr[label])
            if with_cpu:
                c[label] = min(c.get(label, float("inf")), cc[label])
    threads.shutdown()
    # Pool start-up alone: a 2-page document of small pages, cold pool vs warm pool.
    tiny = io.BytesIO()
    small = [img.resize((img.width // 6, img.height // 12)) for img in images[:2]]
    small[0].save(tiny, "PDF", resolution=dpi // 6, save_all=True, append_images=small[1:])
    tiny_limits = PdfLimits(processes=p, dpi=dpi // 6)
    starts = []
    for _ in range(3):
        pdfmod.shutdown_pools()
        t0 = time.perf_counter()
        parse_pdf(tiny.getvalue(), tiny_limits)
        t1 = time.perf_counter()
        parse_pdf(tiny.getvalue(), tiny_limits)
        starts.append((t1 - t0) - (time.perf_counter() - t1))
    pdfmod.shutdown_pools()
    print("\nbest of each:")
    for label, seconds in r.items():
        print(f"{label:<42} {seconds:7.2f} s  {seconds / n:5.2f} s/page  "
              f"{60 * n / seconds:6.1f} pages/min"
              + (f"  CPU {c[label] / n:5.2f} s/page" if label in c else ""))

    seq = r["parse_pdf, processes=1 (inline)"] / r["raw tesseract, sequential"] - 1
    par_raw = r[f"raw tesseract, {p} at a time"]
    cold = r[f"parse_pdf, processes={p}, cold pool"] / par_raw - 1
    warm = r[f"parse_pdf, processes={p}, warm pool"] / par_raw - 1
    print(f"\noverhead over raw tesseract: sequential {100 * seq:+.1f} %, "
          f"{p} processes cold pool {100 * cold:+.1f} %, warm pool {100 * warm:+.1f} % "
          "(target < 15 %)")
    seq_pgm = r["parse_pdf, processes=1 (inline)"] / r["raw tesseract, sequential, PGM input"] - 1
    warm_pgm = r[f"parse_pdf, processes={p}, warm pool"] / r[
        f"raw tesseract, {p} at a time, PGM input"] - 1
    print(f"overhead over raw tesseract fed the same PGM: sequential {100 * seq_pgm:+.1f} %, "
          f"{p} processes warm pool {100 * warm_pgm:+.1f} %")
    ours_cpu = c["parse_pdf, processes=1 (inline)"]
    print(f"CPU time (load-independent), sequential: parse_pdf "
          f"{100 * (ours_cpu / c['raw tesseract, sequential'] - 1):+.1f} % over raw tesseract, "
          f"{100 * (ours_cpu / c['raw tesseract, sequential, PGM input'] - 1):+.1f} % over raw "
          "tesseract fed the same PGM")
    print(f"process pool start-up (cold minus warm, 2 small pages): "
          f"{min(starts):.2f} s (best of 3), paid once per process as the pool is reused")
    print(f"{n}-page document with {p} processes: "
          f"{60 * n / r[f'parse_pdf, processes={p}, warm pool']:.1f} pages/min warm, "
          f"{60 * n / r[f'parse_pdf, processes={p}, cold pool']:.1f} pages/min cold; "
          f"parallel speed-up over inline x"
          f"{r['parse_pdf, processes=1 (inline)'] / r[f'parse_pdf, processes={p}, warm pool']:.2f}")


if __name__ == "__main__":
    main()

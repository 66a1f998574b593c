"""PDF imaging reports (round 8): what French radiology centres print and we still read wrong.
A conclusion going over a page break under a bare 'Page 1/2' footer (cut at the footer: the
follow-up recommendation on page 2 lost).
Born-digital PDFs are written with samples/generate_pdf.py's writer, read by parsers.pdf and
normalized as the pipeline does."""

from __future__ import annotations

from samples import generate_pdf as g
from tests.test_pdf_round3 import _read

PARC = ("centre", "CENTRE D'IMAGERIE DU PARC - 12 avenue Jean Jaurès, 69007 Lyon")
LEFEVRE = [("label", "Patiente : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]


def _pdf(*pages: list[tuple[str, str]]) -> bytes:
    out = []
    for blocks in pages:
        out += g.layout(blocks)
    return g.write_pdf(out, title="Compte rendu")


def _fields(msg, n: int = 0) -> dict:  # noqa: ANN001
    return {k: v["value"] for k, v in msg.entries[n].details["fields"].items()}


# -- a conclusion over a page break -------------------------------------------------------------
def test_a_conclusion_going_over_a_page_footer_is_read_whole() -> None:
    """A CT report whose conclusion starts at the foot of page 1, under it the bare footer
    'Page 1/2', and goes on page 2 after the repeated header: the conclusion stopped at
    'Page 1/2', the follow-up recommendation lost. A footer that is not the last page's is
    skipped; 'Page 2/2' still ends the conclusion."""
    page_1 = [PARC, *LEFEVRE, ("title", "SCANNER THORACIQUE SANS INJECTION"),
              ("label", "Examen du 28/03/2025"),
              ("head", "Technique :"), ("body", "Acquisition hélicoïdale basse dose."),
              ("head", "Conclusion :"),
              ("body", "Nodule pulmonaire solide lobaire supérieur droit de 8 mm."),
              ("small", "Page 1/2")]
    page_2 = [PARC, *LEFEVRE,
              ("body", "Contrôle scanographique à 3 mois recommandé (Fleischner 2017)."),
              ("small", "Page 2/2"), ("body", "Information au patient : résultats remis.")]
    msg = _read(_pdf(page_1, page_2))
    assert _fields(msg)["conclusion"] == (
        "Nodule pulmonaire solide lobaire supérieur droit de 8 mm.\n"
        "Contrôle scanographique à 3 mois recommandé (Fleischner 2017).")
    assert msg.entries[0].details["fields"]["conclusion"]["page"] == 1

#!/usr/bin/env python3
"""Synthetic French imaging reports (comptes rendus d'imagerie) as PDF files, with a truth file.

Seeded and deterministic: ``python samples/generate_pdf.py --out samples/pdf`` rewrites the
committed set byte for byte (default seed 2025). No clock is read: the hand-written PDFs carry a
fixed creation date and an /ID derived from their content; the Pillow-made "scans" get a fixed
/CreationDate, /ModDate and /Title (Pillow would otherwise stamp the current time and the file
name).

Two forms of each report:

* born-digital ("text"): written by the minimal PDF 1.4 writer below (standard 14 fonts
  Helvetica / Helvetica-Bold with /WinAnsiEncoding, so French accents and the ligature œ are
  encoded in cp1252; one ``BT ... Td (...) Tj ET`` per line); pdfplumber reads the lines back
  exactly;
* "scan": the same laid-out page drawn with Pillow and a TrueType font of this machine (DejaVu
  Sans Condensed, else Pillow's default font), rotated by up to 1.5 degrees, with grey paper,
  noise, speckles and blur, saved as an image-only PDF (JPEG inside, 200 dpi, greyscale).

Also: a mixed PDF (text page + scanned annex), a byte-identical copy of a scan, a re-scan of the
same paper (other noise and angle), an unknown patient, an encrypted PDF (RC4 40-bit, standard
security handler R2, user password ``secret``: hand-made, no extra dependency), a truncated PDF
and an HTML error page saved as ``.pdf``.

``samples/pdf/truth.csv`` has the expected fields per file; ``truth.json`` the same plus the
full text of every page (line by line, as printed), for text-layer and OCR checks.

Needs Pillow (present in the project venv). The people are the sample patients K1..K8 of
``samples/patients.csv`` plus U1 (Gaëlle Le Bihan, deliberately unknown), as in
``samples/README.md``. None of these people exist.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import struct
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from random import Random

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import luhn_digit, nir_key  # noqa: E402  (same NIR/FINESS rules as the HL7 set)

SEED = 2025
DPI = 200
JPEG_QUALITY = 70
PAGE_W, PAGE_H = 595.28, 841.89  # A4 in points
MARGIN_L, MARGIN_TOP, MARGIN_BOTTOM = 56.0, 60.0, 64.0
FIXED_DATE = "D:20251120090000Z"  # creation date written in every PDF (no clock read)
FIXED_STRUCT_TIME = time.struct_time((2025, 11, 20, 9, 0, 0, 3, 324, 0))
USER_PASSWORD = "secret"
OWNER_PASSWORD = "proprietaire"

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu",
             "/usr/share/fonts/TTF", "/usr/local/share/fonts"]
FONT_FILES = {"regular": "DejaVuSansCondensed.ttf", "bold": "DejaVuSansCondensed-Bold.ttf"}

# --------------------------------------------------------------------------------------------
# People, centres, practitioners
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    key: str
    family: str  # used name
    birth_family: str
    given: str
    birth_date: date
    sex: str
    nir: str


U1 = Person("U1", "Le Bihan", "Le Bihan", "Gaëlle", date(1990, 7, 4), "F", "290075626024810")


def load_patients(path: Path = HERE / "patients.csv") -> dict[str, Person]:
    people = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            people[row["key"]] = Person(row["key"], row["family"], row["birth_family"] or
                                        row["family"], row["given"],
                                        date.fromisoformat(row["birth_date"]), row["sex"],
                                        row["ins"])
    people["U1"] = U1
    for person in people.values():
        if nir_key(person.nir[:13]) != person.nir[13:]:
            raise ValueError(f"{person.key}: NIR key is invalid")
    return people


def finess(base8: str) -> str:
    return base8 + luhn_digit(base8)


@dataclass(frozen=True)
class Centre:
    name: str
    address: str
    phone: str
    finess: str
    town: str


CENTRES = {
    "lyon": Centre("Centre d'imagerie médicale Lumière", "12 rue de la République, 69002 Lyon",
                   "04 78 42 17 90", finess("69004567"), "Lyon"),
    "quimper": Centre("Imagerie de l'Odet", "3 quai de l'Odet, 29000 Quimper",
                      "02 98 55 31 20", finess("29001234"), "Quimper"),
    "paris": Centre("Cabinet de radiologie Saint-Antoine", "184 rue du Faubourg-Saint-Antoine, "
                    "75012 Paris", "01 43 44 20 18", finess("75004321"), "Paris"),
    "ajaccio": Centre("Cabinet de radiologie du Golfe", "8 cours Napoléon, 20000 Ajaccio",
                      "04 95 21 63 07", finess("20000456"), "Ajaccio"),
    "bastia": Centre("Imagerie médicale de Toga", "Port de Toga, 20200 Bastia",
                     "04 95 31 45 62", finess("20001789"), "Bastia"),
    "bordeaux": Centre("Service de médecine nucléaire, Clinique Saint-Augustin",
                       "114 avenue d'Arès, 33000 Bordeaux", "05 56 24 18 33",
                       finess("33006543"), "Bordeaux"),
    "vannes": Centre("Radiologie Vannes Ouest", "21 rue Émile-Zola, 56000 Vannes",
                     "02 97 46 10 75", finess("56000987"), "Vannes"),
}

RADIOLOGISTS = [
    ("Marc-Antoine", "ROCHE"), ("Isabelle", "FERRAND"), ("Gwénaël", "KERGOAT"),
    ("Sophie", "ORSINI"), ("Laurent", "PAOLI"), ("Véronique", "LACOSTE"),
    ("Thibaut", "LE MOAL"), ("Nadia", "BENSAÏD"), ("Étienne", "FOURCADE"),
]

# --------------------------------------------------------------------------------------------
# The reports
# --------------------------------------------------------------------------------------------

MODALITIES = {"XR": "radiographie", "US": "échographie", "CT": "scanner (TDM)", "MR": "IRM",
              "MG": "mammographie", "PT": "TEP-TDM", "DXA": "ostéodensitométrie"}


@dataclass
class Report:
    file: str
    patient: str
    centre: str
    exam_date: date
    modality: str
    body_region: str
    title: str
    prescriber: str
    indication: list[str]
    technique: list[str]
    results: list[str]
    conclusion: str
    form: str  # text / scan / mixed
    print_nir: bool = True
    rpps: bool = True
    reader_title: str = "radiologue"
    page_breaks: tuple[str, ...] = ()  # section/paragraph starts that open a new page
    annex: list[str] = field(default_factory=list)  # lines of the scanned annex (mixed form)
    accession: str = ""
    radiologist: str = ""
    radiologist_rpps: str = ""


def reports() -> list[Report]:
    return [
        Report("01_irm_genou_droit_K1_texte.pdf", "K1", "lyon", date(2025, 3, 14), "MR",
               "genou droit", "IRM du genou droit", "Dr Anne MOREAU",
               ["Gonalgies droites depuis trois mois après un mouvement de torsion, avec "
                "épisodes de blocage. Recherche d'une lésion méniscale."],
               ["IRM 1,5 T. Séquences sagittales, coronales et axiales en densité de protons "
                "avec saturation de la graisse, sagittale T1. Pas d'injection de produit de "
                "contraste."],
               ["Fissure horizontale de la corne postérieure du ménisque médial, atteignant la "
                "surface articulaire inférieure. Ménisque latéral d'aspect normal.",
                "Ligaments croisés antérieur et postérieur continus, de signal normal. "
                "Ligaments collatéraux médial et latéral intacts.",
                "Chondropathie fémoro-patellaire de grade II, sans lésion ostéochondrale. "
                "Discret œdème spongieux du plateau tibial médial.",
                "Épanchement intra-articulaire de faible abondance. Pas de kyste poplité."],
               "Fissure horizontale de grade III de la corne postérieure du ménisque médial. "
               "Chondropathie fémoro-patellaire de grade II. Épanchement articulaire de faible "
               "abondance.", "text"),
        Report("02_tdm_thorax_K2_scan.pdf", "K2", "quimper", date(2025, 4, 22), "CT", "thorax",
               "Scanner thoracique sans injection", "Dr Yann LE GALL",
               ["Tabagisme sevré depuis 2015 (40 paquets-années). Toux persistante depuis deux "
                "mois."],
               ["Acquisition hélicoïdale thoracique sans injection de produit de contraste, "
                "reconstructions en fenêtres parenchymateuse et médiastinale. PDL : 212 "
                "mGy.cm."],
               ["Emphysème centrolobulaire prédominant aux apex.",
                "Nodule solide de 6 mm du segment apical du lobe supérieur droit, à contours "
                "réguliers. Pas de condensation alvéolaire ni de verre dépoli.",
                "Pas d'épanchement pleural ni péricardique. Pas d'adénomégalie médiastinale ou "
                "hilaire. Calcifications coronariennes.",
                "Structures osseuses sans particularité."],
               "Nodule pulmonaire solide de 6 mm du lobe supérieur droit : contrôle "
               "scanographique à 12 mois. Emphysème centrolobulaire.", "scan", print_nir=False,
               rpps=False),
        Report("03_echo_abdominale_K3_texte.pdf", "K3", "paris", date(2025, 5, 6), "US",
               "abdomen", "Échographie abdominale", "Dr Sarah BENHAMOU",
               ["Douleurs de l'hypochondre droit post-prandiales. Bilan hépatique perturbé."],
               ["Échographie abdominale par voies sous-costale et intercostale, sonde convexe. "
                "Patiente à jeun."],
               ["Foie de taille normale, d'échostructure homogène, sans lésion focale.",
                "Vésicule biliaire à paroi fine, contenant plusieurs calculs mobiles avec cône "
                "d'ombre postérieur, le plus gros mesurant 12 mm. Signe de Murphy "
                "échographique négatif.",
                "Pas de dilatation des voies biliaires intra- ou extra-hépatiques ; voie "
                "biliaire principale de 4 mm.",
                "Pancréas, rate et reins sans anomalie. Pas d'épanchement péritonéal."],
               "Lithiase vésiculaire non compliquée. Pas de dilatation des voies biliaires.",
               "text"),
        Report("04_radio_poignet_gauche_K4_scan.pdf", "K4", "lyon", date(2025, 6, 2), "XR",
               "poignet gauche", "Radiographie du poignet gauche", "Dr Élodie GARNIER",
               ["Chute sur la main en extension au cours d'une séance de sport. Douleur de "
                "l'extrémité distale du radius."],
               ["Radiographies du poignet gauche de face et de profil."],
               ["Fracture en motte de beurre de la métaphyse distale du radius, sans "
                "déplacement.",
                "Cartilages de croissance respectés. Ulna intacte. Os du carpe sans anomalie.",
                "Discret œdème des parties molles en regard de la face dorsale."],
               "Fracture en motte de beurre de la métaphyse radiale distale gauche, non "
               "déplacée. Cartilage de croissance respecté.", "scan", rpps=False),
        Report("05_tdm_abdomino_pelvienne_K5_texte.pdf", "K5", "ajaccio", date(2025, 7, 18),
               "CT", "abdomen et pelvis", "TDM abdomino-pelvienne avec injection",
               "Dr Jean-Marc FAURE",
               ["Douleurs fébriles de la fosse iliaque gauche, syndrome inflammatoire (CRP à "
                "120 mg/L). Suspicion de sigmoïdite."],
               ["Acquisition abdomino-pelvienne au temps portal après injection intraveineuse "
                "de 90 mL de produit de contraste iodé. Créatininémie préalable : 88 µmol/L. "
                "PDL : 540 mGy.cm."],
               ["Épaississement pariétal circonférentiel du côlon sigmoïde sur 8 cm, avec "
                "densification de la graisse péricolique et nombreux diverticules.",
                "Collection péri-sigmoïdienne de 15 mm, sans bulle d'air extradigestive. Pas de "
                "pneumopéritoine. Pas d'épanchement intrapéritonéal.",
                "Foie, rate, pancréas et surrénales sans particularité. Kyste cortical simple "
                "du rein droit de 22 mm (Bosniak I).",
                "Prostate augmentée de volume, estimée à 55 mL."],
               "Sigmoïdite diverticulaire compliquée d'un abcès péri-sigmoïdien de 15 mm (stade "
               "Hinchey Ib). Pas de perforation en péritoine libre.", "text"),
        Report("06_mammographie_K6_scan.pdf", "K6", "bastia", date(2025, 5, 27), "MG", "seins",
               "Mammographie bilatérale et échographie mammaire", "Dr Cécile LAMBERT",
               ["Dépistage organisé du cancer du sein. Pas d'antécédent familial. Pas de "
                "traitement hormonal."],
               ["Mammographie numérique bilatérale, incidences de face et oblique externe. "
                "Complément échographique bilatéral."],
               ["Seins de densité de type B selon la classification ACR.",
                "Pas de masse, pas de foyer de microcalcifications suspectes, pas de distorsion "
                "architecturale.",
                "Échographie : kyste simple de 8 mm à l’union des quadrants supérieurs du sein "
                "gauche. Pas d'adénopathie axillaire."],
               "ACR 2 à gauche (kyste simple), ACR 1 à droite. Mammographie de dépistage à "
               "renouveler dans deux ans.", "scan"),
        Report("07_tep_tdm_K7_texte.pdf", "K7", "bordeaux", date(2025, 9, 9), "PT",
               "corps entier", "TEP-TDM au 18F-FDG", "Dr Minh NGUYEN",
               ["Bilan d'extension d'un adénocarcinome du lobe inférieur gauche récemment "
                "diagnostiqué."],
               ["Injection de 245 MBq de 18F-FDG, glycémie à 5,4 mmol/L. Acquisition TEP "
                "couplée à un scanner basse dose du vertex à la mi-cuisse, 60 minutes après "
                "l'injection."],
               ["Masse hypermétabolique de 32 mm du lobe inférieur gauche (SUVmax 11,2).",
                "Adénopathie hilaire gauche hypermétabolique (SUVmax 6,4). Pas "
                "d'hypermétabolisme ganglionnaire médiastinal ni sus-claviculaire.",
                "Pas de fixation pathologique hépatique, surrénalienne ou osseuse. Fixations "
                "physiologiques cérébrale, myocardique et urinaire."],
               "Masse pulmonaire hypermétabolique du lobe inférieur gauche avec adénopathie "
               "hilaire homolatérale. Pas de localisation secondaire à distance.", "text",
               print_nir=False, reader_title="médecin nucléaire"),
        Report("08_irm_pelvienne_K8_scan_3pages.pdf", "K8", "lyon", date(2025, 8, 12), "MR",
               "pelvis", "IRM pelvienne - bilan d'endométriose", "Dr Amélie BOUCHER",
               ["Dysménorrhée sévère et dyspareunie profonde depuis deux ans. Suspicion "
                "d'endométriose profonde. Bilan préopératoire."],
               ["IRM 3 T après préparation rectale (lavement) et opacification vaginale par gel "
                "échographique. Antispasmodique par voie intramusculaire.",
                "Séquences T2 dans les trois plans, T1 avec et sans saturation de la graisse, "
                "diffusion, puis T1 avec saturation de la graisse après injection de "
                "gadolinium (0,1 mmol/kg)."],
               ["Utérus : antéversé, de taille normale (78 x 45 x 52 mm). Zone jonctionnelle "
                "épaissie à 14 mm en regard de la paroi postérieure, avec spots en "
                "hypersignal T2 évocateurs d'adénomyose focale. Endomètre de 6 mm, régulier.",
                "Ovaire droit : de taille normale, folliculaire, sans lésion kystique.",
                "Ovaire gauche : endométriome de 28 mm en hypersignal T1 franc persistant "
                "après saturation de la graisse, avec signe du shading en T2. Pas de végétation "
                "ni de prise de contraste suspecte.",
                "Compartiment antérieur : pas d'atteinte de l'espace vésico-utérin ni de la "
                "paroi vésicale. Uretères non dilatés.",
                "Compartiment postérieur : nodule des ligaments utéro-sacrés, à gauche, de "
                "12 mm, en hyposignal T2 avec quelques spots en hypersignal T1. Le ligament "
                "utéro-sacré droit est fin et régulier.",
                "Torus utérin épaissi, rétracté, en continuité avec le nodule utéro-sacré "
                "gauche.",
                "Cloison recto-vaginale libre. Cul-de-sac vaginal postérieur d'aspect normal.",
                "Rectum et charnière recto-sigmoïdienne : pas d'épaississement de la "
                "musculeuse, pas de signe du champignon. Distance à la marge anale de la "
                "charnière : 15 cm.",
                "Côlon sigmoïde, caecum et appendice sans anomalie visible.",
                "Compartiment latéral : paramètres libres. Pas d'atteinte des nerfs "
                "sacrés.",
                "Pas d'épanchement péritonéal. Pas d'adénopathie iliaque ni inguinale.",
                "Reins : pas de dilatation des cavités pyélocalicielles.",
                "Structures osseuses du bassin sans anomalie de signal.",
                "Cartographie : lésions décrites selon la classification #Enzian : O2/0, "
                "T1/0, A0, B1/0, C0."],
               "Endométriose profonde postérieure : nodule du ligament utéro-sacré gauche de "
               "12 mm et du torus utérin, sans atteinte digestive. Endométriome ovarien gauche "
               "de 28 mm. Adénomyose focale postérieure.", "scan",
               page_breaks=("Compartiment postérieur", "Conclusion")),
        Report("09_osteodensitometrie_K1_mixte.pdf", "K1", "lyon", date(2025, 9, 23), "DXA",
               "rachis lombaire et hanche gauche", "Ostéodensitométrie (absorptiométrie "
               "biphotonique)", "Dr Anne MOREAU",
               ["Femme ménopausée de 57 ans. Antécédent de fracture du poignet après une chute "
                "de sa hauteur. Évaluation du risque fracturaire."],
               ["Absorptiométrie biphotonique à rayons X (DXA) du rachis lombaire (L1-L4) et de "
                "l'extrémité supérieure du fémur gauche. Résultats détaillés en annexe."],
               ["Rachis lombaire L1-L4 : densité minérale osseuse de 0,871 g/cm², T-score à "
                "-1,8, Z-score à -0,9.",
                "Col fémoral gauche : 0,702 g/cm², T-score à -1,6.",
                "Hanche totale gauche : 0,842 g/cm², T-score à -1,1."],
               "Ostéopénie au rachis lombaire (T-score -1,8) et au col fémoral gauche (T-score "
               "-1,6). Pas d'ostéoporose densitométrique.", "mixed",
               annex=["Annexe : résultats densitométriques détaillés",
                      "",
                      "Région | DMO (g/cm²) | T-score | Z-score",
                      "L1 | 0,812 | -2,0 | -1,1",
                      "L2 | 0,858 | -1,9 | -1,0",
                      "L3 | 0,889 | -1,7 | -0,8",
                      "L4 | 0,913 | -1,6 | -0,7",
                      "L1-L4 | 0,871 | -1,8 | -0,9",
                      "Col fémoral | 0,702 | -1,6 | -0,6",
                      "Hanche totale | 0,842 | -1,1 | -0,3",
                      "",
                      "",
                      "Appareil : absorptiomètre DXA, référence NHANES III (femmes).",
                      "Coefficient de variation du rachis lombaire : 1,0 %."]),
        Report("12_radio_thorax_inconnue_U1_texte.pdf", "U1", "vannes", date(2025, 11, 4),
               "XR", "thorax", "Radiographie du thorax de face", "Dr Thierry ROUSSEL",
               ["Fièvre à 38,7 °C et toux productive depuis cinq jours. Recherche d'un foyer "
                "pulmonaire."],
               ["Radiographie du thorax de face, en inspiration, debout."],
               ["Opacité alvéolaire systématisée du lobe inférieur droit, avec bronchogramme "
                "aérien.",
                "Pas d'épanchement pleural. Médiastin non élargi. Silhouette cardiaque de "
                "taille normale."],
               "Pneumopathie franche lobaire inférieure droite. Pas d'épanchement pleural.",
               "text"),
        Report("13_irm_cerebrale_K3_chiffre.pdf", "K3", "paris", date(2025, 10, 14), "MR",
               "crâne", "IRM cérébrale sans et avec injection", "Dr Philippe RIVIÈRE",
               ["Céphalées inhabituelles depuis un mois, résistantes aux antalgiques."],
               ["IRM 1,5 T : séquences T1, T2, FLAIR, diffusion, T2*, puis T1 3D après "
                "injection de gadolinium."],
               ["Pas de lésion expansive intracrânienne. Pas d'anomalie de signal de la "
                "substance blanche.",
                "Système ventriculaire de taille normale, médian. Pas de prise de contraste "
                "anormale."],
               "IRM cérébrale normale.", "text"),
        Report("14_radio_rachis_lombaire_K5_tronque.pdf", "K5", "ajaccio", date(2025, 10, 2),
               "XR", "rachis lombaire", "Radiographie du rachis lombaire", "Dr Jean-Marc FAURE",
               ["Lombalgies mécaniques chroniques."],
               ["Radiographies du rachis lombaire de face et de profil, debout."],
               ["Discopathie dégénérative étagée, prédominant en L4-L5 et L5-S1, avec "
                "ostéophytose antérieure.",
                "Arthrose interapophysaire postérieure lombaire basse. Pas de "
                "spondylolisthésis. Pas de tassement vertébral."],
               "Discarthrose lombaire étagée prédominant en L4-L5 et L5-S1. Pas de tassement.",
               "text"),
    ]


# --------------------------------------------------------------------------------------------
# Layout: the same laid-out pages feed the PDF writer and the scan renderer
# --------------------------------------------------------------------------------------------

STYLES = {  # name: (font, size, leading, space before)
    "centre": ("bold", 13.0, 16.0, 0.0),
    "small": ("regular", 8.5, 11.0, 0.0),
    "body": ("regular", 10.0, 13.5, 0.0),
    "label": ("regular", 10.0, 13.5, 0.0),
    "title": ("bold", 12.0, 16.0, 10.0),
    "head": ("bold", 10.5, 14.5, 8.0),
    "table": ("regular", 10.0, 13.5, 0.0),
    "strong": ("bold", 10.0, 13.5, 0.0),  # a body-size word in bold (a lab's abnormal value)
}
TABLE_COLUMNS = (0.0, 110.0, 200.0, 265.0)  # x offsets (pt) of the cells of a "table" line
WRAP = {"body": 88, "small": 100, "label": 88, "title": 70, "centre": 70, "head": 80,
        "table": 10_000, "strong": 88}


@dataclass
class Line:
    style: str
    text: str
    x: float = 0.0
    y: float = 0.0  # baseline, PDF coordinates (from the bottom)

    @property
    def cells(self) -> list[tuple[float, str]]:
        """(x, text) pieces as drawn: table lines are cells separated by ' | '."""
        if self.style != "table":
            return [(self.x, self.text)]
        return [(self.x + dx, t) for dx, t in zip(TABLE_COLUMNS, self.text.split(" | "),
                                                       strict=False)]

    @property
    def font(self) -> str:
        return STYLES[self.style][0]

    @property
    def size(self) -> float:
        return STYLES[self.style][1]


def wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(" "), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return lines


def fmt_date(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def fmt_nir(nir: str) -> str:
    return " ".join([nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:15]])


def civility(p: Person, when: date) -> str:
    age = when.year - p.birth_date.year - ((when.month, when.day) <
                                          (p.birth_date.month, p.birth_date.day))
    if age < 15:
        return "Enfant"
    return "Mme" if p.sex == "F" else "M."


def patient_line(p: Person, when: date) -> str:
    s = f"Patient : {civility(p, when)} {p.family.upper()} {p.given}"
    if p.sex == "F" and p.birth_family != p.family:
        s += f", née {p.birth_family.upper()}"
    return s


def report_blocks(r: Report, p: Person) -> list[tuple[str, str]]:
    """The report as (style, paragraph) blocks; '\\f' as the style forces a new page."""
    c = CENTRES[r.centre]
    b: list[tuple[str, str]] = [
        ("centre", c.name), ("small", c.address),
        ("small", f"Tél. {c.phone} - FINESS {c.finess}"), ("title", r.title),
        ("label", patient_line(p, r.exam_date)),
        ("label", f"Date de naissance : {fmt_date(p.birth_date)}"),
    ]
    if r.print_nir:
        b.append(("label", f"N° de sécurité sociale : {fmt_nir(p.nir)}"))
    b += [("label", f"Prescripteur : {r.prescriber}"),
          ("label", f"Examen du {fmt_date(r.exam_date)} - N° d'examen : {r.accession}")]
    for head, paras in (("Indication", r.indication), ("Technique", r.technique),
                        ("Résultats", r.results)):
        if head in r.page_breaks:
            b.append(("\f", ""))
        b.append(("head", head))
        for para in paras:
            if any(para.startswith(s) for s in r.page_breaks):
                b.append(("\f", ""))
            b.append(("body", para))
    if "Conclusion" in r.page_breaks:
        b.append(("\f", ""))
    b += [("head", "Conclusion"), ("body", r.conclusion), ("head", "")]
    sig = f"{r.radiologist}, {r.reader_title}"
    if r.rpps:
        sig += f" (RPPS {r.radiologist_rpps})"
    b += [("body", sig),
          ("small", f"Compte rendu validé électroniquement à {c.town}, le "
                    f"{fmt_date(r.exam_date)}.")]
    return b


def layout(blocks: list[tuple[str, str]], footer: str | None = None) -> list[list[Line]]:
    """Place the blocks on A4 pages, top to bottom; a page footer 'page i/n' when n > 1."""
    pages: list[list[Line]] = [[]]
    y = PAGE_H - MARGIN_TOP
    for style, text in blocks:
        if style == "\f":
            pages.append([])
            y = PAGE_H - MARGIN_TOP
            continue
        _, size, leading, before = STYLES[style]
        if pages[-1]:
            y -= before
        for part in (wrap(text, WRAP[style]) if text else []):
            if y < MARGIN_BOTTOM:
                pages.append([])
                y = PAGE_H - MARGIN_TOP
            pages[-1].append(Line(style, part, MARGIN_L, round(y, 2)))
            y -= leading
        if not text:
            y -= leading / 2
    if len(pages) > 1:
        for i, page in enumerate(pages, 1):
            label = f"{footer} - page {i}/{len(pages)}" if footer else f"page {i}/{len(pages)}"
            page.append(Line("small", label, MARGIN_L, 36.0))
    return pages


def page_text(page: list[Line]) -> str:
    """The page as read in reading order: one line per printed line, table cells joined by
    a single space."""
    return "\n".join(" ".join(t for _, t in line.cells) for line in page)


# --------------------------------------------------------------------------------------------
# A minimal PDF 1.4 writer (text pages with the standard 14 fonts, JPEG image pages, RC4)
# --------------------------------------------------------------------------------------------

PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    out = bytearray(len(data))
    i = j = 0
    for n, byte in enumerate(data):
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out[n] = byte ^ s[(s[i] + s[j]) & 0xFF]
    return bytes(out)


def pdf_escape(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_content(page: list[Line]) -> bytes:
    ops = []
    for line in page:
        font = "F2" if line.font == "bold" else "F1"
        for x, text in line.cells:
            ops.append(b"BT /%s %s Tf %.2f %.2f Td (%s) Tj ET" % (
                font.encode(), f"{line.size:g}".encode(), x, line.y, pdf_escape(text)))
    return b"\n".join(ops) + b"\n"


@dataclass
class ImagePage:
    jpeg: bytes
    width: int
    height: int


def write_pdf(pages: list[list[Line] | ImagePage], *, title: str,
              user_password: str | None = None) -> bytes:
    """A PDF 1.4 file: text pages (Helvetica/Helvetica-Bold, WinAnsiEncoding) or full-page
    greyscale JPEG images. With ``user_password``: RC4 40-bit, standard security handler R2."""
    objs: list[tuple[bytes, bytes | None]] = []  # (dictionary, stream) per object, 1-based

    def add(d: bytes, stream: bytes | None = None) -> int:
        objs.append((d, stream))
        return len(objs)

    add(b"<< /Type /Catalog /Pages 2 0 R >>")
    add(b"")  # Pages, filled below
    f1 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    f2 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
             b"/Encoding /WinAnsiEncoding >>")
    kids = []
    for page in pages:
        res = b"/Font << /F1 %d 0 R /F2 %d 0 R >>" % (f1, f2)
        if isinstance(page, ImagePage):
            im = add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                     b"/DeviceGray /BitsPerComponent 8 /Filter /DCTDecode" %
                     (page.width, page.height), page.jpeg)
            content = b"q %.2f 0 0 %.2f 0 0 cm /Im1 Do Q\n" % (PAGE_W, PAGE_H)
            res = b"/XObject << /Im1 %d 0 R >>" % im
        else:
            content = text_content(page)
        cref = add(b"<<", content)
        kids.append(add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] "
                        b"/Resources << %s >> /Contents %d 0 R >>" % (PAGE_W, PAGE_H, res, cref)))
    objs[1] = (b"<< /Type /Pages /Kids [%s] /Count %d >>" %
               (b" ".join(b"%d 0 R" % k for k in kids), len(kids)), None)
    info_strings = {"Title": title, "Producer": "dmp-samples generate_pdf.py",
                    "CreationDate": FIXED_DATE}
    info = add(b"")  # filled once the key is known
    digest = hashlib.md5()
    for d, s in objs:
        digest.update(d)
        digest.update(s or b"")
    file_id = digest.digest()

    key = None
    encrypt_ref = None
    if user_password is not None:
        P = -44
        upw = (user_password.encode("latin-1") + PAD)[:32]
        opw = (OWNER_PASSWORD.encode("latin-1") + PAD)[:32]
        o_entry = rc4(hashlib.md5(opw).digest()[:5], upw)
        key = hashlib.md5(upw + o_entry + struct.pack("<i", P) + file_id).digest()[:5]
        u_entry = rc4(key, PAD)
        encrypt_ref = add(b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
            o_entry.hex().encode(), u_entry.hex().encode(), P))

    def crypt(num: int, data: bytes) -> bytes:
        if key is None:
            return data
        k = hashlib.md5(key + num.to_bytes(3, "little") + (0).to_bytes(2, "little")).digest()
        return rc4(k[:10], data)

    objs[info - 1] = (b"<< " + b" ".join(
        b"/%s <%s>" % (k.encode(), crypt(info, v.encode("cp1252")).hex().encode())
        for k, v in info_strings.items()) + b" >>", None)

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, (d, stream) in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % num)
        if stream is None:
            out.write(d + b"\n")
        else:
            data = crypt(num, stream)
            head = d[:-2] if d.endswith(b">>") else d
            if head == b"<<":
                head = b"<<"
            out.write(head + b" /Length %d >>\nstream\n" % len(data))
            out.write(data + b"\nendstream\n")
        out.write(b"endobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R /ID [<%s> <%s>]" % (
        len(objs) + 1, info, file_id.hex().encode(), file_id.hex().encode())
    if encrypt_ref:
        trailer += b" /Encrypt %d 0 R" % encrypt_ref
    out.write(trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Scans: render a laid-out page with Pillow, then age it like paper through a scanner
# --------------------------------------------------------------------------------------------


def find_fonts() -> tuple[dict[str, str | None], str]:
    found: dict[str, str | None] = {}
    for k, name in FONT_FILES.items():
        found[k] = next((str(Path(d) / name) for d in FONT_DIRS if (Path(d) / name).exists()),
                        None)
    label = ("DejaVu Sans Condensed (+ Bold)" if all(found.values())
             else "Pillow default font (no DejaVu TTF found)")
    return found, label


def scan_environment() -> dict[str, str]:
    """What the scans' bytes depend on besides the seed: Pillow (its JPEG encoder) and the
    font files. Same values -> same bytes; otherwise the scans differ slightly."""
    import PIL
    paths, label = find_fonts()
    env = {"pillow": PIL.__version__, "font": label}
    for kind, path in sorted(paths.items()):
        if path:
            env[f"font_{kind}_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return env


def _font(kind: str, px: float):
    from PIL import ImageFont
    path = find_fonts()[0][kind]
    if path:
        return ImageFont.truetype(path, size=max(1, round(px)))
    return ImageFont.load_default(size=max(1, round(px)))


def render_page(page: list[Line], dpi: int = DPI):
    from PIL import Image, ImageDraw
    scale = dpi / 72.0
    img = Image.new("L", (round(PAGE_W * scale), round(PAGE_H * scale)), 255)
    draw = ImageDraw.Draw(img)
    cache: dict[tuple[str, float], object] = {}
    for line in page:
        font = cache.setdefault((line.font, line.size), _font(line.font, line.size * scale))
        for x, text in line.cells:
            draw.text((x * scale, (PAGE_H - line.y) * scale), text, fill=20, font=font,
                      anchor="ls")
    return img


def degrade(img, rng: Random):
    """Grey paper, slight rotation, noise, speckles and blur, deterministic for ``rng``."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter
    paper = rng.randint(228, 238)
    ink = rng.randint(25, 45)
    img = img.point(lambda v: ink + (paper - ink) * v // 255)
    angle = rng.uniform(0.3, 1.5) * rng.choice((-1, 1))
    img = img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=paper - 40)
    w, h = img.size
    noise = Image.frombytes("L", (w, h), rng.randbytes(w * h)).point(lambda v: v >> 4)
    img = ImageChops.subtract(ImageChops.add(img, Image.new("L", (w, h), 6)), noise)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(250, 500)):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.choice((1, 1, 1, 2, 2, 3))
        draw.ellipse((x, y, x + r, y + r), fill=rng.randint(60, 160))
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 0.9)))


def scan_images(pages: list[list[Line]], seed: str) -> list:
    rng = Random(f"dmp-samples:scan:{seed}")
    return [degrade(render_page(p), rng) for p in pages]


def jpeg_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, dpi=(DPI, DPI))
    return buf.getvalue()


def pillow_pdf(images: list, title: str) -> bytes:
    """Image-only PDF written by Pillow, with fixed dates and title (no clock, no file name)."""
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=DPI, quality=JPEG_QUALITY, save_all=True,
                   append_images=images[1:], title=title, creator="Numériseur",
                   producer="Pillow", creationDate=FIXED_STRUCT_TIME, modDate=FIXED_STRUCT_TIME)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# The sample set
# --------------------------------------------------------------------------------------------

TRUTH_FIELDS = ["file", "patient", "family", "birth_family", "given", "birth_date", "sex",
                "nir", "exam_date", "accession", "modality", "modality_label", "body_region",
                "title", "centre", "finess", "prescriber", "radiologist", "radiologist_rpps",
                "conclusion", "form", "pages", "text_pages", "outcome", "code", "duplicate_of",
                "detail"]

NOT_PDF = (b"<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
           b"<title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1>\n"
           b"<p>Le serveur du portail d'imagerie n'a pas r\xc3\xa9pondu. Veuillez r\xc3\xa9essayer "
           b"plus tard.</p>\n<hr><address>nginx</address></body></html>\n")


def prepared_reports(seed: int = SEED) -> dict[str, Report]:
    """The reports by file name, with their radiologist, RPPS and accession number drawn
    from ``seed`` (the same draws as the committed set for the same seed)."""
    rng = Random(f"dmp-samples:pdf:{seed}")
    rads = list(RADIOLOGISTS)
    rng.shuffle(rads)
    by_name: dict[str, Report] = {}
    for n, r in enumerate(reports()):
        given, family = rads[n % len(rads)]
        r.radiologist = f"Dr {given} {family}"
        r.radiologist_rpps = "8" + "".join(str(rng.randrange(10)) for _ in range(10))
        r.accession = f"{r.modality}{r.exam_date:%y%m%d}{rng.randrange(1000, 10000)}"
        by_name[r.file] = r
    return by_name


def report_pages(r: Report, people: dict[str, Person]) -> tuple[Person, list[list[Line]]]:
    """The report's patient and its laid-out pages (footer 'NAME Given - date - page i/n')."""
    p = people[r.patient]
    footer = f"{p.family.upper()} {p.given} - {fmt_date(r.exam_date)}"
    return p, layout(report_blocks(r, p), footer)


def scan_set(count: int, seed: int = SEED) -> list[tuple[str, bytes, dict]]:
    """``count`` scanned reports for measurements (bench/bench_ocr_cer.py), not part of the
    committed set: every readable report of the set in turn (born-digital ones too), each
    scanned as an image-only PDF with noise, angle and blur of its own. Returns (name, PDF
    bytes, truth) with truth holding 'conclusion', 'body_region', 'exam_date', 'modality' and
    'page_texts' (the printed lines)."""
    people = load_patients()
    usable = [r for name, r in prepared_reports(seed).items()
              if not name.startswith(("13_", "14_"))]  # encrypted / truncated twins: same kind
    out = []
    for n in range(count):
        r = usable[n % len(usable)]
        _, pages = report_pages(r, people)
        name = f"cer_{n + 1:02d}_{Path(r.file).stem}.pdf"
        data = pillow_pdf(scan_images(pages, f"{seed}:cer:{n}"), r.title)
        out.append((name, data, {"file": name, "conclusion": r.conclusion,
                                 "body_region": r.body_region, "modality": r.modality,
                                 "exam_date": r.exam_date.isoformat(),
                                 "page_texts": [page_text(pg) for pg in pages]}))
    return out


def build(seed: int = SEED) -> tuple[dict[str, bytes], list[dict]]:
    """Every file of the set (name -> bytes) and its truth row (with 'page_texts')."""
    people = load_patients()
    files: dict[str, bytes] = {}
    truth: list[dict] = []
    by_name = prepared_reports(seed)

    def row(r: Report, p: Person | None, pages: list[list[Line]], form: str, outcome: str,
            code: str = "", duplicate_of: str = "", detail: str = "",
            text_pages: str = "") -> dict:
        c = CENTRES[r.centre]
        return {
            "file": r.file, "patient": p.key, "family": p.family,
            "birth_family": p.birth_family, "given": p.given,
            "birth_date": p.birth_date.isoformat(), "sex": p.sex,
            "nir": p.nir if r.print_nir else "", "exam_date": r.exam_date.isoformat(),
            "accession": r.accession, "modality": r.modality,
            "modality_label": MODALITIES[r.modality], "body_region": r.body_region,
            "title": r.title, "centre": c.name, "finess": c.finess,
            "prescriber": r.prescriber, "radiologist": r.radiologist,
            "radiologist_rpps": r.radiologist_rpps if r.rpps else "",
            "conclusion": r.conclusion, "form": form, "pages": len(pages),
            "text_pages": text_pages, "outcome": outcome, "code": code,
            "duplicate_of": duplicate_of, "detail": detail,
            "page_texts": [page_text(pg) for pg in pages],
        }

    for name, r in by_name.items():
        p, pages = report_pages(r, people)
        if name.startswith("09_"):  # mixed: text page(s) + one scanned annex page
            annex = layout([("centre", CENTRES[r.centre].name),
                            ("label", patient_line(p, r.exam_date)),
                            ("label", f"Examen du {fmt_date(r.exam_date)}")] +
                           [("head", r.annex[0])] +
                           [("table" if " | " in t else "body", t) if t else ("head", "")
                            for t in r.annex[1:]])
            img = scan_images(annex, f"{seed}:{name}")[0]
            data = write_pdf(pages + [ImagePage(jpeg_bytes(img), *img.size)], title=r.title)
            files[name] = data
            truth.append(row(r, p, pages + annex, "mixed", "deposited",
                             text_pages=",".join(str(i) for i in range(1, len(pages) + 1)),
                             detail="page 1 has a text layer; page 2 is a scanned annex (image "
                                    "only: OCR) with the detailed densitometry table"))
        elif r.form == "scan":
            data = pillow_pdf(scan_images(pages, f"{seed}:{name}"), r.title)
            files[name] = data
            truth.append(row(r, p, pages, "scan", "deposited",
                             detail="image-only PDF (200 dpi greyscale JPEG): text via OCR"
                             + (f"; {len(pages)} pages" if len(pages) > 1 else "")))
            if name.startswith("02_"):
                copy = "10_tdm_thorax_K2_scan_copie.pdf"
                files[copy] = data
                t = row(r, p, pages, "scan", "duplicate", "DUPLICATE_BYTES", name,
                        "byte-for-byte copy of 02 (the same scan uploaded twice): dedupe "
                        "level 1, nothing reprocessed")
                t["file"] = copy
                truth.append(t)
                rescan = "11_tdm_thorax_K2_rescan.pdf"
                files[rescan] = pillow_pdf(scan_images(pages, f"{seed}:{name}:rescan"), r.title)
                t = row(r, p, pages, "scan", "duplicate", "DUPLICATE_CONTENT", name,
                        "the same paper report scanned again (other angle, noise and blur: "
                        "other bytes, same text): dedupe level 4, one document with two "
                        "provenance links; recognising it needs the OCR text (same patient, "
                        "exam date, accession number, conclusion)")
                t["file"] = rescan
                truth.append(t)
        elif name.startswith("12_"):
            files[name] = write_pdf(pages, title=r.title)
            truth.append(row(r, p, pages, "text", "quarantined", "IDENTITY_UNKNOWN_PATIENT",
                             text_pages="1", detail="U1 (valid NIR, printed) is not in "
                             "patients.csv: quarantined as unknown patient (deposited in a new "
                             "dossier when auto-creation is on)"))
        elif name.startswith("13_"):
            files[name] = write_pdf(pages, title=r.title, user_password=USER_PASSWORD)
            truth.append(row(r, p, pages, "text", "failed", "PDF_ENCRYPTED",
                             text_pages="1", detail="encrypted (standard security handler, "
                             "RC4 40-bit, R2) with a user password ('secret'): cannot be read "
                             "without it; the text behind it is the truth given here"))
        elif name.startswith("14_"):
            full = write_pdf(pages, title=r.title)
            files[name] = full[: len(full) * 55 // 100]
            truth.append(row(r, p, pages, "text", "failed", "PDF_CORRUPT",
                             detail=f"a text PDF cut at 55 % of its {len(full)} bytes "
                             "(interrupted transfer): no xref, no trailer, no %%EOF"))
        else:
            files[name] = write_pdf(pages, title=r.title)
            truth.append(row(r, p, pages, "text", "deposited",
                             text_pages=",".join(str(i) for i in range(1, len(pages) + 1)),
                             detail="born-digital PDF with a text layer"))
    files["15_pas_un_pdf.pdf"] = NOT_PDF
    truth.append({k: "" for k in TRUTH_FIELDS} | {
        "file": "15_pas_un_pdf.pdf", "patient": "", "form": "none", "pages": 0,
        "outcome": "failed", "code": "PDF_NOT_PDF", "page_texts": [],
        "detail": "an HTML error page (502 Bad Gateway) saved with a .pdf extension: no %PDF "
                  "header"})
    order = sorted(files)
    truth.sort(key=lambda t: order.index(t["file"]))
    return {n: files[n] for n in order}, truth


def write_set(out: Path, seed: int = SEED) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files, truth = build(seed)
    for old in out.glob("*.pdf"):
        if old.name not in files:
            old.unlink()
    paths = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        paths.append(out / name)
    with (out / "truth.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, TRUTH_FIELDS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(truth)
    (out / "truth.json").write_text(json.dumps(
        {"seed": seed, "dpi": DPI, "scan_environment": scan_environment(), "files": truth},
        ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return paths + [out / "truth.csv", out / "truth.json"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Synthetic French imaging reports as PDF files "
                                             "(text layer and scans), with a truth file.")
    ap.add_argument("--out", type=Path, required=True, help="output folder (samples/pdf)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"default {SEED}")
    args = ap.parse_args(argv)
    paths = write_set(args.out, args.seed)
    total = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} files, {total} bytes in {args.out} (scans: {find_fonts()[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

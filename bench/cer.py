"""Character error rate (CER) of OCR'd text against the known truth: bench and quality test.

CER = Levenshtein distance (insertions + deletions + substitutions, one character each)
divided by the length of the truth. The only normalisation is of white space: every run of
blanks (spaces, line ends, form feeds) becomes one space on both sides and the ends are
stripped, because line breaks depend on the layout, not on what was read. Everything else
counts: case, accents ('e' for 'é' is one error), punctuation, typographic apostrophes.

Written here (a small dynamic programme) rather than taken from a package: the dependency
list is fixed, and the texts compared are a few thousand characters at most.
"""

from __future__ import annotations

import difflib


def normalise_space(text: str) -> str:
    """Runs of white space as one space, ends stripped: the only normalisation applied."""
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance between ``a`` and ``b`` (unit costs), two rows of the DP table."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(got: str, truth: str) -> float:
    """Character error rate of ``got`` against ``truth`` (both white-space normalised); an
    empty truth gives 0 when nothing was read, else 1."""
    got, truth = normalise_space(got), normalise_space(truth)
    if not truth:
        return 0.0 if not got else 1.0
    return levenshtein(got, truth) / len(truth)


def differences(got: str, truth: str, context: int = 12) -> list[str]:
    """The differing pieces as 'truth -> got' with a little context, for reading the errors."""
    got, truth = normalise_space(got), normalise_space(truth)
    out = []
    matcher = difflib.SequenceMatcher(None, truth, got, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        before = truth[max(0, i1 - context):i1]
        after = truth[i2:i2 + context]
        out.append(f"…{before}[{truth[i1:i2]!s} -> {got[j1:j2]!s}]{after}…")
    return out

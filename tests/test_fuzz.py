"""Fuzzing through the real pipeline (intake, then drain): every input ends in a terminal
ledger state, failures with a specific code (never INTERNAL_ERROR), within a time limit.

HL7v2 messages built with random field contents (delimiters, escapes, non-ASCII, NUL...),
random byte mutations of real messages (samples/hl7v2, ../shared/corpus/hl7v2 when present),
mutated CDA documents (elements deleted or duplicated, attribute values replaced,
truncation), and random byte streams to a real MLLP listener that must keep serving a
well-behaved client, and every frame they held ends in a terminal ledger state. CI runs a
few dozen examples per strategy; DMP_FUZZ_EXAMPLES raises it (`make soak`).
"""

from __future__ import annotations

import copy
import os
import random
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import select

from dossiers.schema import imports
from pipelines.intake import Received, intake
from pipelines.ledger import DEPOSITED, DUPLICATE, FAILED, QUARANTINED, SPLIT
from pipelines.process import Context, drain
from pipelines.settings import Source, load_settings
from tests.conftest import CORPUS, SAMPLES, migrated_sqlite
from tests.mllp_support import Client, msa, running_service
from tests.reliability_support import create_sample_dossiers

EXAMPLES = int(os.environ.get("DMP_FUZZ_EXAMPLES", "40"))
PER_INPUT_SECONDS = 30  # a hang fails the test; a slow machine does not
FUZZ = settings(max_examples=EXAMPLES, deadline=PER_INPUT_SECONDS * 1000, derandomize=
                os.environ.get("DMP_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
ENDED = {DEPOSITED, DUPLICATE, FAILED, QUARANTINED, SPLIT}


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """SIGALRM against hangs (main thread only)."""
    def expired(*_: object) -> None:
        raise TimeoutError(f"input not processed within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_ctx(request, tmp_path_factory) -> Iterator[Context]:  # noqa: ANN001
    """One store per database for all the examples of the module (PostgreSQL refuses some
    bytes SQLite stores: NUL in text)."""
    home = tmp_path_factory.mktemp("fuzz")
    env = {"DMP_HOME": str(home), "DMP_MAPPINGS_DIR": str(SAMPLES / "mappings")}
    if request.param == "postgresql":
        env["DMP_DATABASE_URL"] = request.getfixturevalue("postgres_server").new_database()
    else:  # the home's store, a copy of the session's template
        migrated_sqlite(request.getfixturevalue("sqlite_template"), home / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env=env))
    create_sample_dossiers(ctx)
    yield ctx
    ctx.engine.dispose()


def _tally(outcome: list) -> None:
    path = os.environ.get("DMP_RELIABILITY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\t".join(["fuzz", *map(str, outcome)]) + "\n")


def run_one(ctx: Context, data: bytes, kind: str) -> list:
    """Intake then drain one input; assert every row it made ended well."""
    with time_limit(PER_INPUT_SECONDS):
        results = intake(ctx.engine, ctx.archive, [Received(data=data, source="fuzz",
                                                            channel="file",
                                                            file_name="fuzz.bin")])
        ids = [i for r in results for i in r.message_ids] + \
            [r.batch_id for r in results if r.batch_id is not None]
        drain(ctx, ids=ids)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports).where(imports.c.id.in_(ids))).all()
    assert len(rows) == len(ids)
    for row in rows:
        assert row.status in ENDED, (row.id, row.status)
        if row.status == FAILED:
            assert row.error_code and row.error_code != "INTERNAL_ERROR", (
                row.id, row.error_code, row.error_message, row.error_location)
        assert row.stage != "internal"
    _tally([kind, len(rows), *sorted(r.status for r in rows)[:1]])
    return rows


# -- HL7v2 built with random contents --------------------------------------------------------
NASTY = ["|", "^", "~", "\\", "&", "\r", "\n", "\x00", "\x0b", "\x1c", "\x1f", "'", '"', ";",
         "--", "%", "_", "é", "É", "ß", "€", "漢", "\U0001F600", "\\F\\", "\\S\\",
         "\\T\\", "\\R\\", "\\E\\", "\\X0D\\", "\\X00\\", "\\.br\\", "\\H\\"]
field_text = st.one_of(
    st.lists(st.sampled_from(NASTY + list("azAZ09 .,:-+/")), max_size=30).map("".join),
    st.text(max_size=20),
    st.integers(1, 700).map(lambda n: "W" * n),  # longer than a column
    st.sampled_from(["", "\"\"", "2.5", "0", "-1", "1e309", "NaN", "99999999999999999999",
                     "20240315", "20240315083000+0100", "2024", "31/12/2024", "279035121518989",
                     "188102B17295165", "mmol/L", "10*9/L", "<0.5", ">=3", "^^^", "~~", "\\"]),
)


@st.composite
def hl7_messages(draw) -> bytes:  # noqa: ANN001
    """An ORU^R01 whose every field is, one time in eight, random text (delimiters, escapes,
    NUL, non-ASCII...) instead of a valid value, for a patient the store mostly holds
    (samples/patients.csv, K1): many messages get as far as filing."""
    def v(valid: str) -> str:
        return draw(field_text) if draw(st.integers(0, 7)) == 0 else valid

    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    charset = "UNICODE UTF-8" if encoding == "utf-8" else "8859/1"
    known = draw(st.integers(0, 3)) > 0
    nir = "268036912354128" if known else draw(field_text)
    name = "Béranger^Hélène^^^^^L~Lefèvre^Hélène^^^^^D" if known else f"{v('X')}^{v('Y')}^^^^^L"
    birth, sex = ("19680314", "F") if known else (v("19680314"), v("F"))
    segments = [
        f"MSH|^~\\&|{v('LABM')}|{v('CERBA')}|DMP|DMP|{v('20250114114200+0100')}||"
        f"{v('ORU^R01^ORU_R01')}|{v(f'FZ{draw(st.integers(0, 10**9))}')}|P|{v('2.5')}"
        f"|||||FRA|{v(charset)}",
        f"PID|1||{nir}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||{name}||{birth}|"
        f"{sex}" + "|" * 24 + v("VALI"),
        f"OBR|1|{v('P-1')}|{v('F-1')}|{v('58410-2^NFS^LN')}|||{v('202501131047+0100')}",
    ]
    for n in range(draw(st.integers(0, 4))):
        segments.append(
            f"OBX|{n + 1}|{v(draw(st.sampled_from(['NM', 'ST', 'TX', 'CE', 'SN'])))}|"
            f"{v('718-7')}^{v('Hémoglobine')}^{v('LN')}||{v('12.7')}|{v('g/dL')}|"
            f"{v('12.0-16.0')}|{v('N')}|||{v('F')}|||{v('202501131047+0100')}")
    text = "\r".join(segments) + "\r"
    return text.encode(encoding, "replace")


@FUZZ
@given(message=hl7_messages())
def test_fuzz_hl7v2_random_contents(fuzz_ctx, message: bytes) -> None:  # noqa: ANN001
    run_one(fuzz_ctx, message, "hl7v2-built")


# -- mutations of real messages ---------------------------------------------------------------
def _real_messages() -> list[bytes]:
    files = sorted((SAMPLES / "hl7v2").glob("*.hl7"))
    corpus = CORPUS / "hl7v2"
    if corpus.is_dir():
        files += sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".hl7", ".er7")
                        and "ack" not in p.name.lower())
    return [p.read_bytes() for p in files]


HL7_REAL = _real_messages()
CDA_REAL = [p.read_bytes() for p in sorted((SAMPLES / "cda").glob("*.xml"))]


def mutate_bytes(data: bytes, rng: random.Random, n: int) -> bytes:
    buf = bytearray(data)
    for _ in range(n):
        if not buf:
            break
        op = rng.randrange(6)
        i = rng.randrange(len(buf))
        if op == 0:
            buf[i] = rng.randrange(256)
        elif op == 1:
            del buf[i:i + rng.randint(1, 40)]
        elif op == 2:
            buf[i:i] = bytes(rng.choice(b"|^~\\&\r\n\x00\x0b\x1c\xff\xc3") for _ in
                             range(rng.randint(1, 5)))
        elif op == 3:
            j = rng.randrange(len(buf))
            buf[i:i] = buf[min(i, j):max(i, j)][:2000]  # duplicate a stretch (segments)
        elif op == 4:
            del buf[i:]  # truncation
        else:
            buf[i:i] = rng.choice([b"\\X00\\", b"\\E\\", b"\\", b"\xc3\x28", b"\xed\xa0\x80",
                                   "É".encode("latin-1"), b"MSH|^~\\&|"])
    return bytes(buf)


@FUZZ
@given(index=st.integers(0, len(HL7_REAL) - 1), seed=st.integers(0, 2**32 - 1),
       n=st.integers(1, 8))
def test_fuzz_hl7v2_mutated_real_messages(fuzz_ctx, index: int, seed: int,  # noqa: ANN001
                                          n: int) -> None:
    run_one(fuzz_ctx, mutate_bytes(HL7_REAL[index], random.Random(seed), n), "hl7v2-mutated")


# -- CDA mutations ---------------------------------------------------------------------------
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                        huge_tree=False)


def mutate_cda(data: bytes, rng: random.Random, n: int) -> bytes:
    try:
        root = etree.fromstring(data, _SAFE)
    except etree.XMLSyntaxError:
        return mutate_bytes(data, rng, n)
    for _ in range(n):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        e = rng.choice(elements)
        op = rng.randrange(5)
        parent = e.getparent()
        if op == 0 and parent is not None:
            parent.remove(e)
        elif op == 1 and parent is not None:
            # a copy, not a reparse: the element may hold an entity reference that
            # only the document's DTD defines (the XXE sample)
            parent.insert(parent.index(e), copy.deepcopy(e))
        elif op == 2 and e.attrib:
            name = rng.choice(sorted(e.attrib))
            e.set(name, rng.choice(["", "x", "-1", "99999999999999", "20241301", "2.16.840.1",
                                    "ÿ\u202e", "1.2.250.1.213.1.4.8", "urn:oid:", "NaN",
                                    "&amp;", "<", "00000000000000"]))
        elif op == 3:
            e.text = rng.choice(["", "   ", "É" * 50, "\u0000".replace("\u0000", ""), "1e308",
                                 "<script/>", "\\"])
        else:
            e.attrib.clear()
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if rng.random() < 0.2:
        out = out[:rng.randrange(len(out))]
    return out


@FUZZ
@given(index=st.integers(0, len(CDA_REAL) - 1), seed=st.integers(0, 2**32 - 1),
       n=st.integers(1, 6))
def test_fuzz_cda_mutations(fuzz_ctx, index: int, seed: int, n: int) -> None:  # noqa: ANN001
    run_one(fuzz_ctx, mutate_cda(CDA_REAL[index], random.Random(seed), n), "cda-mutated")


# -- MLLP framing against a real listener ----------------------------------------------------
GOOD = (b"MSH|^~\\&|LAB|FAC|DMP|DMP|20240315101500||ORU^R01^ORU_R01|GOOD-%d|P|2.5\r"
        b"PID|||LOCAL1^^^LAB&1.2.3&ISO^PI||NOM^PRENOM||19790328|F\r")


def test_fuzz_mllp_streams_do_not_stop_the_listener(tmp_path) -> None:  # noqa: ANN001
    settings_ = load_settings(env={"DMP_HOME": str(tmp_path / "home"),
                                   "DMP_MAPPINGS_DIR": str(SAMPLES / "mappings")})
    ctx = Context.from_settings(replace(settings_, sources=(Source("labs"),)))
    pieces = [b"\x0b", b"\x1c", b"\r", b"\x1c\r", b"\x0bMSH|^~\\&|", b"\x00", b"\xff" * 10,
              b"PID|||", b"\n", GOOD % 0]

    @FUZZ
    @given(stream=st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(pieces)),
                           max_size=30),
           close_early=st.booleans())
    def hostile(stream: list[bytes], close_early: bool) -> None:
        with time_limit(PER_INPUT_SECONDS):
            raw = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            try:
                raw.sendall(b"".join(stream))
                if close_early:
                    raw.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the listener may close a connection that sent garbage
            # a well-behaved client is served meanwhile, on a connection of its own
            with Client(running.port) as client:
                counter[0] += 1
                ack = client.send(GOOD % counter[0], timeout=PER_INPUT_SECONDS)
                assert ack is not None and msa(ack)[1] in ("AA", "CA")
            raw.close()
            _tally(["mllp-stream", 1, "served"])

    counter = [0]
    try:
        with running_service(ctx, process=False) as running:
            hostile()
        # every frame the streams held (and every good message) was recorded: each ends
        # in a terminal state, failures with a specific code
        with time_limit(PER_INPUT_SECONDS * 10):
            drain(ctx)
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.id, imports.c.status, imports.c.stage,
                                       imports.c.error_code)).all()
        assert len(rows) >= counter[0]
        for row in rows:
            assert row.status in ENDED, (row.id, row.status)
            if row.status == FAILED:
                assert row.error_code and row.error_code != "INTERNAL_ERROR", tuple(row)
            assert row.stage != "internal"
    finally:
        ctx.engine.dispose()

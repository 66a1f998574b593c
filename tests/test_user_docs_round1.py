"""The README's operator walk-through, as the service runs it (user docs, round 1).

The README tells an operator whose lab's imports failed with CODE_UNMAPPED to add the code
to the source's mapping table and rerun them. ``serve``'s workers and listener keep one
processing context for their whole life, and that context loaded the mapping tables once:
the rerun failed again with CODE_UNMAPPED until the service was restarted. These tests file
with ONE context before and after the table changes, as a worker of ``serve`` does.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from pipelines.intake import Received, intake
from pipelines.prepare_pool import _context_blob
from pipelines.process import CODE_VERSION, Context, drain
from pipelines.report import show_import
from pipelines.rerun import reopen_checked
from pipelines.settings import SettingsError, load_settings
from tests.test_pipeline import make_patient, oru

GLYCEMIE = "OBX|4|NM|GLYC^Glycémie à jeun^L||5.4|mmol/L|3.9-5.8|N|||F"
TABLE = "coding_system,local_code,loinc,display\nL,GLYC,14749-6,Glucose à jeun\n"


def _service_context(ctx: Context, tables) -> Context:  # noqa: ANN001
    """One long-lived context, as ``serve``'s worker has: labo-lyon must map its codes."""
    settings = dataclasses.replace(ctx.settings, mappings_dir=tables,
                                   require_mapping=frozenset({"labo-lyon"}))
    return Context(settings=settings, engine=ctx.engine, archive=ctx.archive, trigger="serve")


def test_a_mapping_added_while_the_service_runs_is_used_by_the_rerun(sqlite_ctx,
                                                                     tmp_path) -> None:  # noqa: ANN001
    tables = tmp_path / "mappings"
    tables.mkdir()
    service = _service_context(sqlite_ctx, tables)
    make_patient(sqlite_ctx)
    received = [Received(oru("CR-20261127-1", extra_obx=GLYCEMIE), "labo-lyon", "mllp")]
    import_id = intake(sqlite_ctx.engine, sqlite_ctx.archive, received)[0].message_ids[0]
    assert drain(service) == {"failed": 1}
    failed = show_import(sqlite_ctx.engine, import_id)
    assert (failed["error_code"], failed["error_location"]) == ("CODE_UNMAPPED", "OBX[8]-3")

    (tables / "labo-lyon.csv").write_text(TABLE, encoding="utf-8")  # the operator's fix
    plan = reopen_checked(sqlite_ctx.engine, sqlite_ctx.archive, [import_id],
                          code_version=CODE_VERSION)
    assert drain(service, ids=plan.to_process) == {"deposited": 1}
    produced = show_import(sqlite_ctx.engine, import_id)["produced"]
    assert ("14749-6", "LN") in {(p["code"], p["system"]) for p in produced}


def test_the_preparing_processes_are_given_the_tables_read_again(sqlite_ctx,
                                                                  tmp_path) -> None:  # noqa: ANN001
    """The preparing pool's processes check that they normalize with the filing process's
    tables version, taken from the context's pickle: a pickle kept from before the change
    would have them prepare with the old table (or refuse every chunk)."""
    tables = tmp_path / "mappings"
    tables.mkdir()
    service = _service_context(sqlite_ctx, tables)
    before = pickle.loads(_context_blob(service))[1]
    assert service.mappings.lookup("labo-lyon", "L", "GLYC") is None

    (tables / "labo-lyon.csv").write_text(TABLE, encoding="utf-8")
    service.refresh_tables()
    after = pickle.loads(_context_blob(service))[1]
    assert after != before and [name for name, _, _ in after] == ["labo-lyon.csv"]
    assert service.mappings.lookup("labo-lyon", "L", "GLYC")[0] == "14749-6"


def test_unchanged_tables_are_not_read_again(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    tables = tmp_path / "mappings"
    tables.mkdir()
    (tables / "labo-lyon.csv").write_text(TABLE, encoding="utf-8")
    service = _service_context(sqlite_ctx, tables)
    loaded = service.mappings
    service.refresh_tables()
    assert service.mappings is loaded


README_SOURCE = """
[sources.cerballiance-lyon]
sending_application = "LABM"
sending_facility = "CERBALLIANCE_LYON"
peers = ["10.20.0.0/16", "2001:db8:20::/48"]
charset = "cp1252"
timezone = "Europe/Paris"
mllp_release = 1
max_silence = "2h"
application_ack_route = "mirth.cerballiance.fr:6662"
application_ack_tls = true
application_ack_ca = "/etc/dmp/cerballiance-ca.pem"
"""


def _load(tmp_path, text: str):  # noqa: ANN001, ANN202
    path = tmp_path / "dmp.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(env={"DMP_HOME": str(tmp_path), "DMP_CONFIG": str(path)})


def test_the_readme_source_table_loads(tmp_path) -> None:  # noqa: ANN001
    (source,) = _load(tmp_path, README_SOURCE).sources
    assert (source.id, source.sending_application, source.timezone) == (
        "cerballiance-lyon", "LABM", "Europe/Paris")


@pytest.mark.parametrize(("line", "name"), [
    ('sending_aplication = "LABM"', "sending_aplication"),  # matched every application
    ('require_mapping = ["labo-lyon"]', "require_mapping"),  # meant as a top-level key
])
def test_an_unknown_name_in_a_source_table_stops_the_start(tmp_path, line: str,  # noqa: ANN001
                                                           name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, f'[sources.biomnis-lyon]\nsending_facility = "BIOMNIS"\n{line}\n')
    assert f"[sources.biomnis-lyon] unknown setting {name!r}" in str(caught.value)
    assert "sending_application" in str(caught.value)  # the names it knows

"""One settings object, from environment variables and an optional TOML file.

Precedence: explicit keyword arguments > environment (DMP_*) > TOML file (DMP_CONFIG, default
$DMP_HOME/dmp.toml) > defaults. Everything the code needs to find its store and archive is
here, so that cli.py, flows.py and tests build the same thing from the same inputs.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    archive_url: str
    auto_create: bool = False
    mappings_dir: Path | None = None  # extra per-source local->LOINC CSV tables
    source_charsets: dict[str, str] = field(default_factory=dict)  # source -> fallback codec
    batch_size: int = 500  # ledger rows claimed per processing batch
    s3_endpoint_url: str | None = None

    def fallback_charset(self, source: str) -> str | None:
        return self.source_charsets.get(source) or self.source_charsets.get("*")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("DMP_HOME", "var")).resolve()
    config_path = Path(env.get("DMP_CONFIG", home / "dmp.toml"))
    conf: dict = {}
    if config_path.is_file():
        with config_path.open("rb") as fh:
            conf = tomllib.load(fh)

    def pick(name: str, default: object = None) -> object:
        key = "DMP_" + name.upper()
        if key in env:
            return env[key]
        return conf.get(name, default)

    database_url = str(pick("database_url") or f"sqlite:///{home / 'dmp.sqlite3'}")
    archive_url = str(pick("archive_url") or str(home / "archive"))
    mappings = pick("mappings_dir")
    charsets = dict(conf.get("source_charsets", {}))
    for item in filter(None, str(env.get("DMP_SOURCE_CHARSETS", "")).split(",")):
        source, _, codec = item.partition("=")
        charsets[source.strip()] = codec.strip()
    values: dict[str, object] = dict(
        home=home,
        database_url=database_url,
        archive_url=archive_url,
        auto_create=_truthy(str(pick("auto_create", ""))),
        mappings_dir=Path(str(mappings)) if mappings else None,
        source_charsets=charsets,
        batch_size=int(str(pick("batch_size", 500))),
        s3_endpoint_url=(str(pick("s3_endpoint_url")) if pick("s3_endpoint_url") else None),
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]

"""The database source: the sample's tables loaded into a SQL database that ``dvc import-db`` snapshots.

DVC reads a connection named in its config (``db.<name>.url``, ``username``, ``password``); the project's
committed config names ``sample``, an SQLite file the project writes from the sample. Pointing ``sample`` at
PostgreSQL (or any SQLAlchemy URL) in ``.dvc/config.local`` is the one setting that swaps the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

SAMPLE_CONNECTION = "sample"
SAMPLE_DATABASE = Path("data/sample.sqlite")  # relative to the project root, where DVC runs
SAMPLE_URL = f"sqlite:///{SAMPLE_DATABASE.as_posix()}"


class DatabaseError(RuntimeError):
    """A database could not be reached, or refused what was asked of it."""


def shown(url: str) -> str:
    """``url`` with any password masked, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL at all: never echo what may hold a secret
        return "<not a database URL>"


def load_tables(url: str, tables: Mapping[str, pd.DataFrame], *, replace: bool = False) -> list[str]:
    """Create ``tables`` in the database at ``url`` in one transaction; refuse existing ones unless ``replace``.

    Nothing is written when any table exists (without ``replace``). A write that fails rolls back where the
    database has transactional DDL (PostgreSQL); SQLite's driver commits a replaced table's DROP on its own,
    which is why the sample's SQLite file is written to a copy and moved into place. Returns the names.
    """
    import pandas.errors
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        engine = sa.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError, ValueError) as exc:
        raise DatabaseError(f"{shown(url)}: not a database URL this environment can open ({exc})") from exc
    try:
        with engine.begin() as connection:
            existing = sorted(set(tables) & set(sa.inspect(connection).get_table_names()))
            if existing and not replace:
                raise DatabaseError(f"{shown(url)} already has {', '.join(existing)}; pass --replace to overwrite them")
            for name, frame in tables.items():
                frame.to_sql(name, connection, index=False, if_exists="replace")
    except (SQLAlchemyError, pandas.errors.DatabaseError, ValueError) as exc:
        raise DatabaseError(f"{shown(url)}: {type(exc).__name__}: {getattr(exc, 'orig', None) or exc}") from exc
    finally:
        engine.dispose()
    return list(tables)


def write_sample_database(root: Path, tables: Mapping[str, pd.DataFrame]) -> Path:
    """The sample's SQLite database at :data:`SAMPLE_DATABASE`, written whole or not at all when it lacks a table.

    A file without the tables is rewritten: SQLite creates an empty one when anything opens the URL first
    (a `dvc update` before the sample was written).
    """
    target = root / SAMPLE_DATABASE
    if target.is_file() and set(tables) <= _tables(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    staging.unlink(missing_ok=True)
    try:
        load_tables(f"sqlite:///{staging}", tables)  # a fresh file: nothing to replace
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def _tables(path: Path) -> set[str]:
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:  # not a database at all: rewrite it
        return set()

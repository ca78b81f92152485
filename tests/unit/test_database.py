"""Loading the sample's tables into a database (a real SQLite file), and never echoing a password."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from flightdelay.io import database


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


TABLES = {"carriers": pd.DataFrame({"code": ["AA", "UA", "ZZ"]}), "sites": pd.DataFrame({"id": range(5)})}


def test_the_sample_database_holds_the_tables_and_is_written_once(tmp_path: Path) -> None:
    written = database.write_sample_database(tmp_path, TABLES)
    assert written == tmp_path / database.SAMPLE_DATABASE
    assert {table: rows(written, table) for table in TABLES} == {"carriers": 3, "sites": 5}
    stamp = written.stat().st_mtime_ns
    assert database.write_sample_database(tmp_path, {}) == written  # present: left as it is
    assert written.stat().st_mtime_ns == stamp
    assert not list(written.parent.glob(".*.tmp"))


def test_an_empty_file_in_the_sample_databases_place_is_rewritten(tmp_path: Path) -> None:
    # SQLite creates an empty file when the URL is opened first (a `dvc update` before the sample was written).
    (tmp_path / database.SAMPLE_DATABASE).parent.mkdir(parents=True)
    (tmp_path / database.SAMPLE_DATABASE).write_bytes(b"")
    written = database.write_sample_database(tmp_path, TABLES)
    assert rows(written, "carriers") == 3


def test_existing_tables_are_refused_all_at_once_unless_replaced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    database.load_tables(url, {"a": pd.DataFrame({"x": [1, 2]})})

    with pytest.raises(database.DatabaseError, match=r"already has a; pass --replace"):
        database.load_tables(url, {"b": pd.DataFrame({"y": [1]}), "a": pd.DataFrame({"x": [3]})})
    assert rows(tmp_path / "db.sqlite", "a") == 2
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:  # b was not written either: one transaction
        assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'b'").fetchall() == []

    database.load_tables(url, {"a": pd.DataFrame({"x": [3, 4, 5]})}, replace=True)
    assert rows(tmp_path / "db.sqlite", "a") == 3


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuchdialect://host/db", "not a database URL this environment can open"),
        ("sqlite:////no/such/directory/db.sqlite", "OperationalError"),
        ("postgresql+psycopg://reader:s3cret@127.0.0.1:notaport/db", "not a database URL"),
    ],
)
def test_a_database_that_cannot_be_opened_is_named(url: str, message: str) -> None:
    with pytest.raises(database.DatabaseError, match=message) as raised:
        database.load_tables(url, {"a": pd.DataFrame({"x": [1]})})
    assert "s3cret" not in str(raised.value)


def test_messages_never_show_a_password() -> None:
    assert database.shown("postgresql://reader:s3cret@db.example.com/flights") == (
        "postgresql://reader:***@db.example.com/flights"
    )
    assert database.shown("not a url with s3cret") == "<not a database URL>"

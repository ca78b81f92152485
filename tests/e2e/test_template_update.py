"""The update with real git: a project made from an earlier template commit takes a later one as a branch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flightdelay import template
from flightdelay.template import Answers, Names, TemplateError
from tests.conftest import ROOT
from tests.e2e.conftest import Project, environment
from tests.template_checkout import PACKAGE_DIR, RENAMED, checkout, commit_all, git

pytestmark = pytest.mark.skipif(RENAMED, reason="updates from the template; this project is renamed already")

P, S = template.TEMPLATE_PACKAGE, template.TEMPLATE_SLUG
NAMES = Names.of("churnguard", "Churn Guard")
# Commit B's machinery change: a function in the template's names, which the project must get in its own.
ADDITION = (
    f'\n\ndef release_channel() -> str:\n    """The channel of {S} releases."""\n    return "{P.upper()}_CHANNEL"\n'
)
RENAMED_ADDITION = ADDITION.replace(S, "churn-guard").replace(P.upper(), "CHURNGUARD")
NEW_PARAM = "# a knob the machinery of commit B reads\nrelease_channel: stable\n"


@dataclass
class Scenario:
    template: Path  # commit A, then B
    project: Path  # made from A, renamed, with its own params and README
    a: str
    b: str


def problem_file(repo: Path, package: str) -> Path | None:
    """A module of the sample problem, when the template has the problem package."""
    return next(iter(sorted((repo / "src" / package / "problem").glob("*.py"))), None)


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def make_template_commit_b(repo: Path) -> str:
    """B: the release module gains a function (machinery); params.yaml and the sample problem change (the user's)."""
    append(repo / PACKAGE_DIR / "release.py", ADDITION)
    append(repo / "params.yaml", NEW_PARAM)
    problem = problem_file(repo, P)
    if problem is not None:
        append(problem, "# the template's sample changed\n")
    return commit_all(repo, "release: a channel")


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    repo = checkout(tmp_path / "template")
    a = git(repo, "rev-parse", "HEAD").strip()
    project = tmp_path / "project"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(project)], check=True)
    git(project, "config", "user.name", "Project Owner")
    git(project, "config", "user.email", "owner@example.com")
    template.rename(project, Answers(str(repo), a, NAMES))
    commit_all(project, "Rename the project")
    (project / "params.yaml").write_text(
        (project / "params.yaml").read_text().replace("random_state: 42", "random_state: 7")
    )
    (project / "README.md").write_text("# Churn Guard\n\nPredicts which customers leave.\n")
    problem = problem_file(project, NAMES.package)
    if problem is not None:
        append(problem, "# our problem\n")
    commit_all(project, "Our params, README and problem")
    b = make_template_commit_b(repo)
    return Scenario(repo, project, a, b)


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


def test_the_update_brings_machinery_changes_in_the_projects_names_and_leaves_its_files(scenario: Scenario) -> None:
    project = scenario.project
    head, branch_before = git(project, "rev-parse", "HEAD").strip(), git(project, "branch", "--show-current")
    made = template.update(project)
    assert made is not None
    assert made.branch == f"template-update/{scenario.b[:12]}"
    assert git(project, "rev-parse", f"{made.branch}^").strip() == head  # one commit on top of the project
    release = show(project, made.branch, "src/churnguard/release.py")
    assert release == show(project, head, "src/churnguard/release.py") + RENAMED_ADDITION
    assert made.applied == ["src/churnguard/release.py"]
    problem = problem_file(project, NAMES.package)
    owned = ["params.yaml", "README.md", "dvc.lock", "data.dvc"]
    owned += [problem.relative_to(project).as_posix()] if problem is not None else []
    for path in owned:
        assert show(project, made.branch, path) == show(project, head, path), path
    assert "release_channel: stable" in made.skipped["params.yaml"]  # reported, for the user to copy
    if problem is not None:
        assert "the template's sample changed" in made.skipped[problem.relative_to(project).as_posix()]
    assert "Not applied" in made.message and "+release_channel: stable" in made.message
    recorded = Answers.from_json(show(project, made.branch, template.ANSWERS_FILE))
    assert recorded == Answers(str(scenario.template), scenario.b, NAMES)
    assert git(project, "log", "-1", "--format=%an <%ae>", made.branch).strip() == "Project Owner <owner@example.com>"
    # The project's own branch and tree are as they were.
    assert git(project, "rev-parse", "HEAD").strip() == head
    assert git(project, "branch", "--show-current") == branch_before
    assert git(project, "status", "--porcelain") == ""


def test_an_updated_project_is_up_to_date(scenario: Scenario) -> None:
    made = template.update(scenario.project)
    assert made is not None
    git(scenario.project, "merge", "--quiet", "--ff-only", made.branch)
    assert template.update(scenario.project) is None
    result = CliRunner().invoke(template.app, ["update", "--root", str(scenario.project)])
    assert result.exit_code == 0 and "nothing to do" in result.output


def test_a_conflict_names_the_file_and_creates_nothing(scenario: Scenario) -> None:
    project = scenario.project
    release = project / "src/churnguard/release.py"
    release.write_text(release.read_text() + "\n\ndef release_channel() -> str:\n    return 'ours'\n")
    head = commit_all(project, "Our own release channel")
    result = CliRunner().invoke(template.app, ["update", "--root", str(project)])
    assert result.exit_code == 1
    assert "conflict with yours in: src/churnguard/release.py" in result.output
    assert "Nothing was changed" in result.output
    assert git(project, "branch", "--list", "template-update/*") == ""
    assert git(project, "rev-parse", "HEAD").strip() == head
    assert git(project, "status", "--porcelain") == ""


def test_a_dirty_tree_or_a_project_never_renamed_is_refused(scenario: Scenario) -> None:
    (scenario.project / "params.yaml").write_text("changed\n")
    with pytest.raises(TemplateError, match="uncommitted changes"):
        template.update(scenario.project)
    with pytest.raises(TemplateError, match="run `template rename` first"):
        template.update(scenario.template)


def test_the_update_goes_to_the_commit_asked_for(scenario: Scenario) -> None:
    later = scenario.template / PACKAGE_DIR / "deploy.py"
    later.write_text(later.read_text() + "\n# a later change\n")
    commit_all(scenario.template, "a later change")
    made = template.update(scenario.project, to=scenario.b)
    assert made is not None and made.target == scenario.b
    assert "# a later change" not in show(scenario.project, made.branch, "src/churnguard/deploy.py")


def renamed_project(tmp_path: Path, *, skeleton: bool) -> tuple[Path, Project, str]:
    """The template (commit A) and a project made from it by the rename, committed; and the uv to sync it with."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: the nox sessions link the pinned one (run through `nox -s tests`)")
    # The clone's own environment, not this test's: nox exports its session venv as UV_PROJECT_ENVIRONMENT.
    dropped = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "PYTHONPATH"}
    env = {k: v for k, v in environment(tmp_path).items() if k not in dropped} | {"UV_OFFLINE": "1"}
    # The stages run `python -m <package>.stages.*` from whatever environment is active: the project's own.
    env["PATH"] = f"{tmp_path / 'project' / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    repo = checkout(tmp_path / "template")
    project = Project(tmp_path / "project", env)
    subprocess.run(["git", "clone", "--quiet", str(repo), str(project.path)], check=True)
    project.git("config", "user.name", "Project Owner")
    project.git("config", "user.email", "owner@example.com")
    answers = Answers(str(repo), git(repo, "rev-parse", "HEAD").strip(), NAMES, skeleton=skeleton)
    template.rename(project.path, answers)
    project.git("add", "--all")
    project.git("commit", "--quiet", "-m", "Rename the project" + (" and start from the skeleton" if skeleton else ""))
    return repo, project, uv


@pytest.mark.slow
@pytest.mark.timeout(2400)  # an environment synced and a whole fast suite, beside another worker's tests
def test_a_renamed_then_updated_project_passes_lint_and_its_fast_tests(tmp_path: Path) -> None:
    """The acceptance of the issue: a renamed project, updated, passes lint and the whole fast suite.

    The checks run once, on the updated project: it holds the rename and the update, and the update only adds
    machinery, so it cannot mend a broken rename (the skeleton test checks a project right after its rename).
    """
    repo, project, uv = renamed_project(tmp_path, skeleton=False)
    # The data and the pipeline's outputs from this checkout's cache: the same bytes the renamed dvc.lock records.
    cache = subprocess.run(
        [sys.executable, "-m", "dvc", "cache", "dir"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    tools = project.path / ".venv" / "bin"

    # Commit B adds machinery and a unit test of it, in the template's names.
    make_template_commit_b(repo)
    test = repo / "tests/unit/test_release_channel.py"
    test.write_text(f"from {P}.release import release_channel\n\n\ndef test_channel() -> None:\n")
    test.write_text(test.read_text() + f'    assert release_channel() == "{P.upper()}_CHANNEL"\n')
    commit_all(repo, "a test of the channel")
    made = template.update(project.path)
    assert made is not None and "tests/unit/test_release_channel.py" in made.applied
    project.git("checkout", "--quiet", made.branch)
    project.run(uv, "sync", "--locked", "--quiet")
    project.run(str(tools / "dvc"), "cache", "dir", "--local", cache.stdout.strip())
    project.run(str(tools / "dvc"), "checkout", "--quiet")
    project.run(str(tools / "ruff"), "check", ".")
    project.run(str(tools / "ruff"), "format", "--check", ".")
    project.run(str(tools / "mypy"))
    pytest_ = (str(tools / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-m", "not slow", "-x", "-q")
    done = project.run(*pytest_)
    assert " passed" in done.stdout and " failed" not in done.stdout
    assert "tests/unit/test_release_channel.py" in project.run(*pytest_, "--co").stdout  # the update's own test ran


@pytest.mark.slow
def test_a_skeleton_project_runs_its_pipeline_and_passes_lint_and_its_fast_tests(tmp_path: Path) -> None:
    """The acceptance with --skeleton: the skeleton's sample is written and recorded, the pipeline runs on it,
    and lint and every fast test pass (the sample-bound e2e and monitor tests are not collected, and say so)."""
    _, project, uv = renamed_project(tmp_path, skeleton=True)
    project.run(uv, "sync", "--locked", "--quiet")
    tools = project.path / ".venv" / "bin"
    started = project.run(str(tools / "churn-guard"), "get-data")
    assert "recorded it in data.dvc" in started.stdout
    project.run(str(tools / "dvc"), "repro")
    metrics = json.loads((project.path / "reports/metrics.json").read_text())
    assert metrics["test"]["roc_auc"] >= 0.7  # the skeleton's own gate floor, with room
    project.run(str(tools / "ruff"), "check", ".")
    project.run(str(tools / "ruff"), "format", "--check", ".")
    project.run(str(tools / "mypy"))
    done = project.run(str(tools / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-m", "not slow")
    assert "not collected: tests/e2e, tests/monitor" in done.stdout
    assert " passed" in done.stdout and " failed" not in done.stdout
    assert "tests/problem/test_problem.py" in project.run(str(tools / "python"), "-m", "pytest", "--co", "-q").stdout

"""The rename with real git: every identity name changes and no domain word does, the same bytes twice, refusals."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flightdelay import template
from flightdelay.template import Answers, Names, TemplateError
from tests.template_checkout import PACKAGE_DIR, RENAMED, checkout, git

P, S, C = template.TEMPLATE_PACKAGE, template.TEMPLATE_SLUG, template.TEMPLATE_CLASS
NAMES = Names.of("churnguard", "Churn Guard", owner="@my-org/ml-team")
# The sample problem's words: the rename must leave every one of them where it was.
DOMAIN = re.compile(r"(?<![A-Za-z])(?:flights?|carriers?|airports?|weather|origin)(?![A-Za-z-])|(?<![A-Za-z-])delay")
ANY_SPELLING = re.compile(rf"{P[:6]}[-_ ]?{P[6:]}", re.IGNORECASE)
template_only = pytest.mark.skipif(RENAMED, reason="renames the template; this project is renamed already")


def answers(names: Names = NAMES, *, skeleton: bool = False) -> Answers:
    return Answers(source="https://example.com/template.git", commit="0" * 40, names=names, skeleton=skeleton)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout(tmp_path_factory.mktemp("template") / "repo")


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the committed template (the rename moves files; each test gets its own)."""
    target = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(pristine), str(target)], check=True)
    return target


def tracked_text(repo: Path) -> dict[str, str]:
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    texts = {}
    for path in filter(None, listed):
        try:
            texts[path] = (repo / path).read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
    return texts


def tree(repo: Path) -> str:
    git(repo, "add", "--all")
    return git(repo, "write-tree").strip()


def test_names_derive_from_the_project_name() -> None:
    names = Names.of("churnguard", "Churn Guard")
    assert (names.slug, names.service_class, names.env_prefix) == ("churn-guard", "ChurnGuard", "CHURNGUARD")
    assert names.derived()["bento"] == "churn-guard-service"
    assert Names.of("fraud", "fraud-watch ML").service_class == "FraudWatchML"


def test_each_spelling_becomes_its_name_and_domain_words_stay() -> None:
    text = (
        f"from {P}.io import files  # {P} get-data\n"
        f'env = "{P.upper()}_IMAGE"; metric = "{P}_delay_probability"; model = "{S}"\n'
        f"class {C}: ...  # serves flight.carrier, dep_delay; the {S} sample stays\n"
        f'cmd = [sys.executable, "-m", "{P}", "monitor"]; path = "src/{P}/cli.py"; pin = "{P}.dev/model-version"\n'
    )
    assert template.rename_text(text, "x.py", NAMES) == (
        "from churnguard.io import files  # churn-guard get-data\n"
        'env = "CHURNGUARD_IMAGE"; metric = "churnguard_delay_probability"; model = "churn-guard"\n'
        f"class ChurnGuard: ...  # serves flight.carrier, dep_delay; the {S} sample stays\n"
        'cmd = [sys.executable, "-m", "churnguard", "monitor"]; path = "src/churnguard/cli.py"; '
        'pin = "churn-guard.dev/model-version"\n'
    )


def test_the_lock_entry_is_renamed_and_moved_where_uv_sorts_it() -> None:
    lock = (
        'version = 1\n\n[[package]]\nname = "alpha"\nsource = { registry = "x" }\n\n'
        f'[[package]]\nname = "{P}"\nversion = "0.1.0"\nsource = {{ editable = "." }}\n\n'
        '[[package]]\nname = "zeta"\nsource = { registry = "x" }\n'
    )
    renamed = template.rename_lock(lock, NAMES)
    assert re.findall(r'^name = "(.+)"', renamed, re.MULTILINE) == ["alpha", "churn-guard", "zeta"]
    late = Names.of("zz", "Zz Top")
    assert re.findall(r'^name = "(.+)"', template.rename_lock(lock, late), re.MULTILINE) == ["alpha", "zeta", "zz-top"]
    assert template.rename_lock(lock, late).endswith(
        'name = "zz-top"\nversion = "0.1.0"\nsource = { editable = "." }\n'
    )


def test_user_owned_paths() -> None:
    owned = ("params.yaml", "src/churnguard/problem/x.py", "reports/metrics.json", "README.md", ".template.json")
    assert all(template.is_user_owned(p, "churnguard") for p in owned)
    machinery = ("src/churnguard/release.py", "noxfile.py", "dvc.yaml", "src/churnguard/problem.py", "tests/unit/x.py")
    assert not any(template.is_user_owned(p, "churnguard") for p in machinery)


def test_a_name_in_a_file_name_inside_the_package_moves_too(tmp_path: Path) -> None:
    files = {f"src/{P}/__init__.py": f'"""{P}."""\n', f"src/{P}/{P}_notes.md": "x\n", f"docs/{S}.md": f"{P} docs\n"}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", "--all")
    git(tmp_path, "commit", "--quiet", "-m", "tiny template")
    template.rename(tmp_path, answers(), environment=False)  # a project named churnguard has it installed
    git(tmp_path, "add", "--all")
    listed = set(git(tmp_path, "ls-files").split())
    assert listed == {
        "src/churnguard/__init__.py",
        "src/churnguard/churnguard_notes.md",
        "docs/churn-guard.md",
        ".template.json",
    }
    assert (tmp_path / "docs/churn-guard.md").read_text() == "churn-guard docs\n"


@template_only
def test_rename_changes_every_identity_name_and_no_domain_word(repo: Path) -> None:
    before = tracked_text(repo)
    plan = template.rename(repo, answers())
    after = tracked_text(repo)
    assert not (repo / PACKAGE_DIR).exists()
    assert (repo / "src/churnguard/cli.py").is_file()
    assert plan.leftovers == []
    left = {p: ANY_SPELLING.findall(t) for p, t in after.items() if ANY_SPELLING.search(t)}
    assert set(left) == set(template.NOT_RENAMED)  # the license notice names the template's authors
    moved = {p.replace(f"{PACKAGE_DIR}/", "src/churnguard/"): t for p, t in before.items()}
    assert sorted(moved) == sorted(set(after) - {template.ANSWERS_FILE})
    counts = {p: len(DOMAIN.findall(t)) for p, t in moved.items()}
    assert {p: len(DOMAIN.findall(after[p])) for p in moved} == counts
    assert after["LICENSE"] == before["LICENSE"]
    assert after[".github/CODEOWNERS"].count("@my-org/ml-team") == before[".github/CODEOWNERS"].count("@your-org/")
    assert after["README.md"].startswith("# Churn Guard")
    assert Answers.from_json(after[template.ANSWERS_FILE]) == answers()


@template_only
def test_the_skeleton_replaces_the_sample_problem_its_tests_params_and_records(repo: Path) -> None:
    before = tracked_text(repo)
    template.rename(repo, answers(skeleton=True))
    after = tracked_text(repo)
    problem = "src/churnguard/problem"
    skeleton = {p.removeprefix(f"{template.SKELETON}/"): t for p, t in after.items() if p.startswith(template.SKELETON)}
    # The skeleton's files, renamed, in the sample's places; nothing of the sample is left there.
    assert {p for p in after if p.startswith(f"{problem}/")} == {
        f"{problem}/{p[8:]}" for p in skeleton if p.startswith("problem/")
    }
    assert after[f"{problem}/__init__.py"] == skeleton["problem/__init__.py"]
    assert "from churnguard.interface import" in after[f"{problem}/__init__.py"]
    for tests in ("tests/problem", "tests/data", "tests/model"):
        assert {p for p in after if p.startswith(f"{tests}/")} == {p for p in skeleton if p.startswith(f"{tests}/")}
    assert after["params.yaml"] == skeleton["params.yaml"] != before["params.yaml"]
    # What the sample recorded goes; the pipeline's first run writes the skeleton's sample and records it.
    assert not any(p in after for p in ("data.dvc", "dvc.lock", "reports/metrics.json"))
    assert not [p for p in after if p.startswith("data/raw/")]  # the database snapshots' .dvc files too
    assert not (repo / "reports").exists()
    assert not (repo / "data/raw").exists()
    assert Answers.from_json(after[template.ANSWERS_FILE]).skeleton


@template_only
def test_uv_accepts_the_renamed_lock_without_relocking(repo: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (the nox sessions link the pinned one)")
    template.rename(repo, answers())
    assert 'packages = ["src/churnguard"]' in (repo / "pyproject.toml").read_text()  # distribution churn-guard
    done = subprocess.run([uv, "lock", "--check", "--offline"], cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@template_only
def test_the_same_answers_give_the_same_bytes(repo: Path, pristine: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(pristine), str(other)], check=True)
    template.rename(repo, answers())
    template.rename(other, answers())
    assert tree(repo) == tree(other)
    assert tree(repo) != git(repo, "rev-parse", "HEAD^{tree}").strip()


def refused(repo: Path, given: Answers, match: str) -> None:
    """The rename refuses with ``match`` in its message and writes nothing."""
    status = git(repo, "status", "--porcelain")
    with pytest.raises(TemplateError, match=match):
        template.rename(repo, given)
    assert git(repo, "status", "--porcelain") == status
    assert not (repo / template.ANSWERS_FILE).exists()


@template_only
@pytest.mark.parametrize(
    ("package", "match"),
    [
        ("ChurnGuard", "lowercase letters"),
        ("9lives", "lowercase letters"),
        ("churn-guard", "lowercase letters"),
        ("class", "keyword"),
        ("json", "standard library"),
        ("test", "would shadow"),
        ("mlflow", "installed module"),
        ("tests", "top-level directory"),
        (P, "template's own name"),
    ],
)
def test_a_package_name_that_cannot_work_is_refused(repo: Path, package: str, match: str) -> None:
    refused(repo, answers(Names.of(package, "Churn Guard")), rf"package '{package}'.*{match}")


@template_only
def test_a_dirty_tree_is_refused_with_every_other_problem(repo: Path) -> None:
    (repo / "params.yaml").write_text("changed\n")
    refused(repo, answers(Names.of("json", "Churn Guard", slug="Churn_Guard")), r"uncommitted changes \(params.yaml\)")
    with pytest.raises(TemplateError, match=r"(?s)package 'json'.*slug 'Churn_Guard'"):
        template.rename(repo, answers(Names.of("json", "Churn Guard", slug="Churn_Guard")))


@template_only
def test_a_renamed_project_is_not_renamed_again(repo: Path) -> None:
    template.rename(repo, answers())
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "rename")
    with pytest.raises(TemplateError, match=r"already renamed(?s:.*)src/\w+/ is missing"):
        template.rename(repo, answers(Names.of("fraud", "Fraud")))
    assert git(repo, "status", "--porcelain") == ""


@template_only
def test_the_command_exits_1_naming_the_problem_and_writes_nothing(repo: Path) -> None:
    args = ["rename", "--package", "json", "--project", "Churn Guard", "--root", str(repo)]
    result = CliRunner().invoke(template.app, args)
    assert result.exit_code == 1
    assert "error: refusing to rename" in result.output and "package 'json'" in result.output
    assert git(repo, "status", "--porcelain") == ""


@template_only
def test_the_command_records_the_template_remote_and_commit(repo: Path, pristine: Path) -> None:
    args = ["rename", "--package", "churnguard", "--project", "Churn Guard", "--root", str(repo)]
    result = CliRunner().invoke(template.app, args)
    assert result.exit_code == 0, result.output
    recorded = Answers.from_json((repo / template.ANSWERS_FILE).read_text())
    assert recorded.source == str(pristine)  # the clone's origin
    assert recorded.commit == git(pristine, "rev-parse", "HEAD").strip()
    assert f"moved {PACKAGE_DIR} -> src/churnguard" in result.output

"""Making a fork the user's own project, and taking the template's later changes: ``flightdelay template``.

``flightdelay template rename --package churnguard --project "Churn Guard"`` renames the project's identity
(package, distribution, CLI, service class, Bento, model, experiment, image, env vars, metrics, Kubernetes
names, README title, CODEOWNERS) in every tracked file, moves the package directory to ``src/churnguard``
and records the answers and the template commit in ``.template.json``. It touches only identity names: the
sample problem's own words (flights, carriers, ``dep_delay``...) stay as they are (see :data:`RULES`).

``flightdelay template update`` makes a branch ``template-update/<commit>`` with the template's changes
since the recorded commit, committed and ready to push as a pull request. It clones the template, replays
``rename`` with the recorded answers at the recorded commit (the *old render*) and at the target commit
(the *new render*), each commit with its own copy of this module, and merges the new render into the
user's HEAD with the old render as the merge base (``git merge-tree``). Only template-owned paths take part:
for the paths in :data:`USER_OWNED` the new render is reset to the old one, so the merge keeps the user's
version; the template's changes to them are listed in the commit message for the user to copy by hand.
Neither the user's branch nor their working tree is touched: the branch appears only once the merge is
clean; on a conflict nothing is created and the conflicting files are named.

Why not the tools that exist:

- copier renders a Jinja template and replays it the same way (old render, new render, three-way merge),
  but the template must then be Jinja: ``{{ package }}/`` directories and ``{{ ... }}`` in code, so the
  template could not itself be the runnable, tested project that CI exercises and users fork.
- cruft (on cookiecutter) has the same limit; ``cruft update`` is the same diff-and-apply idea, replayed
  here with ``rename`` as the renderer, so the template stays an ordinary project.
- a plain ``git merge`` from an ``upstream`` remote works until the rename: after it every renamed file
  is a rename/modify conflict, every sample file the user replaced a modify/delete conflict, and where
  nothing conflicts the template's sample changes would land on the user's problem files.

The answers file is JSON (``.template.json``): the standard library reads and writes it (``tomllib`` only
reads TOML), written with sorted keys it is byte-stable, and a reviewer reads it in a diff.

This module imports nothing from its package: ``update`` loads the template's copy of this file from
each cloned commit and runs its :func:`replay`, which must keep its signature.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Make this fork your own project (rename), and take the template's later changes (update).",
)

# The template's own identity, spelled in halves: `rename` rewrites this file too, and these must still
# name the template afterwards (a renamed project replays the template's renames when it updates).
_FLIGHT, _DELAY = "flight", "delay"
TEMPLATE_PACKAGE = _FLIGHT + _DELAY  # import package, env var and metric prefix; the CLI and k8s names
TEMPLATE_SLUG = f"{_FLIGHT}-{_DELAY}"  # model name in the registry and the BentoML store, DVC artifact
TEMPLATE_CLASS = _FLIGHT.title() + _DELAY.title()  # BentoML service class, alert names
TEMPLATE_TITLE = f"{_FLIGHT.title()}-{_DELAY}"  # the package docstring's title

ANSWERS_FILE = ".template.json"
ANSWERS_VERSION = 1
BRANCH_PREFIX = "template-update/"

# Paths the user owns after the rename: `update` never changes them and lists the template's changes to
# them instead. `{package}` is the user's package; `dir/**` is everything under dir. The answers file is
# the user's too, except its recorded commit, which `update` advances.
USER_OWNED = (
    "src/{package}/problem/**",  # the problem: schemas, join, features and label, sample, requests, slices
    "tests/problem/**",  # the problem's unit tests
    "tests/data/**",  # the data tests on the user's data
    "tests/model/**",  # the model tests on the user's model (the release runs them before registering)
    "params.yaml",  # every knob, the user's values
    "data.dvc",  # the user's data
    "dvc.lock",  # the user's pipeline state
    "reports/**",  # the user's results
    "README.md",  # the user's project description
    ".github/CODEOWNERS",  # the user's reviewers
    ANSWERS_FILE,  # the user's answers
    "data/**",
    "models/**",
)
# Skipped diffs of these are listed but not shown: generated files, where a diff says nothing to copy.
_GENERATED = ("dvc.lock", "reports/**", "data/**", "models/**")
# Never renamed: the MIT notice names the template's authors, and the license requires it be kept.
NOT_RENAMED = ("LICENSE",)
# --skeleton: the sample problem goes (its package, tests, params, data and results) and the skeleton's take
# its place. The pipeline's first run writes the skeleton's sample and records it in a new data.dvc.
SKELETON = "examples/skeleton"
_SKELETON_PLACES = {
    "problem": "src/{package}/problem",
    "tests/problem": "tests/problem",
    "tests/data": "tests/data",
    "tests/model": "tests/model",
    "params.yaml": "params.yaml",
}
_SAMPLE_ONLY = ("data.dvc", "data/raw", "dvc.lock", "reports")  # the sample's; the first pipeline run remakes them
_SKIPPED_DIFF_LINES = 120  # a skipped file's diff longer than this is named, not shown
_ENV_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")
# Exactly what any other spelling of the template's name looks like: reported when left unchanged.
_ANY_SPELLING = re.compile(rf"{_FLIGHT}[-_ ]?{_DELAY}", re.IGNORECASE)
_TRIGGER = re.compile(rf"{_ANY_SPELLING.pattern}|@your-org/", re.IGNORECASE)  # a line any rule may change


class TemplateError(RuntimeError):
    """The rename or the update refused or failed; the message says why and what to do."""


# --- names -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """The user's names; everything else derives from them (see :meth:`derived`)."""

    package: str  # import package: src/<package>, `import <package>`, env var prefix, metric prefix
    project: str  # display name: README title, package docstring
    slug: str  # distribution, CLI command, model, experiment, Bento `<slug>-service`, image, k8s names
    service_class: str  # BentoML service class (also the alert names' prefix)
    owner: str | None = None  # CODEOWNERS owner, e.g. @my-org/ml-team; None keeps the placeholder

    @classmethod
    def of(
        cls,
        package: str,
        project: str,
        slug: str | None = None,
        service_class: str | None = None,
        owner: str | None = None,
    ) -> Names:
        """The names with defaults derived from the project name: `Churn Guard` → churn-guard, ChurnGuard."""
        words = re.findall(r"[A-Za-z0-9]+", project)
        return cls(
            package=package,
            project=project.strip(),
            slug=slug or "-".join(w.lower() for w in words),
            service_class=service_class or "".join(w[:1].upper() + w[1:] for w in words),
            owner=owner,
        )

    @property
    def env_prefix(self) -> str:
        return self.package.upper()

    def derived(self) -> dict[str, str]:
        """Every name the rename writes, for the answers file and the summary."""
        return {
            "distribution": self.slug,
            "cli": self.slug,
            "bento": f"{self.slug}-service",
            "service_class": self.service_class,
            "model": self.slug,
            "mlflow_experiment": self.slug,
            "image": f"ghcr.io/your-org/{self.slug}",
            "kubernetes": f"{self.slug}, namespaces {self.slug}-staging and {self.slug}-production",
            "env_prefix": f"{self.env_prefix}_",
            "metric_prefix": f"{self.package}_",
        }


@dataclass(frozen=True)
class Answers:
    """What the answers file records: where the project came from, and the names that made it."""

    source: str  # the template: a git URL or path
    commit: str  # the template commit the project's files come from
    names: Names
    skeleton: bool = False

    def to_json(self) -> str:
        names = {k: v for k, v in vars(self.names).items() if v is not None}
        body = {
            "version": ANSWERS_VERSION,
            "template": {"source": self.source, "commit": self.commit},
            "answers": names | {"skeleton": self.skeleton},
            "derived": self.names.derived(),
        }
        return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Answers:
        """Parse an answers file; keys a later template added are ignored, a missing one is an error."""
        try:
            body = json.loads(text)
            answers = body["answers"]
            names = Names(
                package=answers["package"],
                project=answers["project"],
                slug=answers["slug"],
                service_class=answers["service_class"],
                owner=answers.get("owner"),
            )
            return cls(body["template"]["source"], body["template"]["commit"], names, answers.get("skeleton", False))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TemplateError(f"{ANSWERS_FILE} is not an answers file ({exc!r}); restore it from git") from exc


def check_names(names: Names, root: Path, *, environment: bool = True) -> list[str]:
    """Every problem with the names, all at once (empty when they are fine).

    ``environment`` also refuses a package that an installed module of that name would shadow or be
    shadowed by; a replay skips it, since the user's own package is installed where it runs.
    """
    problems = []
    package = names.package
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", package):
        problems.append(f"package {package!r}: use lowercase letters, digits and _, starting with a letter")
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        problems.append(f"package {package!r} is a Python keyword")
    elif package in sys.stdlib_module_names:
        problems.append(f"package {package!r} would shadow the standard library module of that name")
    elif package == TEMPLATE_PACKAGE:
        problems.append(f"package {package!r} is the template's own name: choose your project's")
    elif (root / package).exists() or package in {"src", "tests", "benchmarks", "deploy"}:
        problems.append(f"package {package!r} is a top-level directory of the repository: imports would clash")
    elif environment and _importable(package):
        problems.append(f"package {package!r} would shadow an installed module of that name (pip show {package})")
    if not names.project or "\n" in names.project or not re.search(r"[A-Za-z]", names.project):
        problems.append(f"project {names.project!r}: give a one-line display name with letters, e.g. 'Churn Guard'")
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", names.slug) or len(names.slug) > 40:
        problems.append(
            f"slug {names.slug!r}: lowercase letters, digits and single hyphens, starting with a letter, at most "
            "40 characters (it names Kubernetes objects and namespaces); pass --slug"
        )
    elif names.slug in {TEMPLATE_SLUG, TEMPLATE_PACKAGE}:
        problems.append(f"slug {names.slug!r} is the template's own name: choose your project's")
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", names.service_class) or keyword.iskeyword(names.service_class):
        problems.append(f"service class {names.service_class!r}: a CamelCase Python class name; pass --service-class")
    elif names.service_class == TEMPLATE_CLASS:
        problems.append(f"service class {names.service_class!r} is the template's own name: choose your project's")
    if names.owner is not None and not re.fullmatch(r"@[\w.-]+(/[\w.-]+)?|[^@\s]+@[^@\s]+\.\w+", names.owner):
        problems.append(f"owner {names.owner!r}: a GitHub @user, @org/team or an email, as CODEOWNERS takes")
    return problems


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return True


# --- the rename table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One spelling of the template's identity in one context, and what it becomes.

    ``pattern`` is a regular expression over the file's text (or a tracked path); ``replace`` a
    :meth:`str.format` template over :class:`Names` fields plus ``slug_snake`` and ``env_prefix``, or
    None to keep the match as it is; ``only`` limits the rule to one file.
    """

    pattern: str
    replace: str | None
    what: str
    only: str | None = None


_P, _S, _C, _T = TEMPLATE_PACKAGE, TEMPLATE_SLUG, TEMPLATE_CLASS, TEMPLATE_TITLE
# Ordered: at a position the first rule that matches wins, so the narrow contexts come before the bare
# names. Each rule was written after reading the occurrences it covers (`git grep -n -i "flight.?delay"`).
RULES: tuple[Rule, ...] = (
    Rule(rf"(?i:{_S})(?= (?:sample|problem|data|domain|example)s?\b)", None, "the sample problem, not the project"),
    Rule(rf"^# {_P}\b", "# {project}", "the README title", only="README.md"),
    Rule(r"@your-org/ml-platform", "{owner}", "the CODEOWNERS placeholder", only=".github/CODEOWNERS"),
    Rule(rf"\bsrc/{_P}\b", "src/{package}", "the package directory"),
    Rule(rf"(?<![\w./-]){_P}(?=/)", "{package}", "a path inside the package (bentofile includes, from src/)"),
    Rule(rf"\b{_P}\.dev\b", "{slug}.dev", "the Kubernetes annotation domain"),
    Rule(rf"{_P}_dev_", "{slug_snake}_dev_", "that annotation as Prometheus spells a label from it"),
    Rule(rf"\b{_P}(?=\.[a-z_])", "{package}", "a module path: <package>.io.files"),
    Rule(rf"(?:(?<=-m )|(?<=\"-m\", \")|(?<=import )|(?<=from )){_P}\b", "{package}", "the package after -m, import"),
    Rule(
        rf"(?:(?<=imports as `)|(?<=# not `)|(?<=`bentoml serve )){_P}\b",
        "{package}",
        "prose about the import package (bentofile.yaml: why the Bento is not named like the package)",
    ),
    Rule(rf"\b{_P.upper()}(?=_)", "{env_prefix}", "an environment variable prefix: <PACKAGE>_IMAGE"),
    Rule(rf"\b{_C}", "{service_class}", "the BentoML service class, its metrics label and the alert names"),
    Rule(rf"\b{_P}_", "{package}_", "a Prometheus metric prefix: <package>_delay_probability"),
    Rule(rf"\b{_T}\b", "{project}", "the package docstring's title"),
    Rule(rf"\b{_S}\b", "{slug}", "the registered model, its BentoML tag, the DVC artifact, the alerts' prose"),
    Rule(
        rf"\b{_P}\b",
        "{slug}",
        "the distribution, CLI, experiment, image, Bento `<slug>-service`, k8s objects, PR-comment markers",
    ),
)


def _values(names: Names) -> dict[str, str]:
    values = {k: v for k, v in vars(names).items() if isinstance(v, str)}
    return values | {"slug_snake": names.slug.replace("-", "_"), "env_prefix": names.env_prefix}


def rename_text(text: str, path: str, names: Names) -> str:
    """``text`` (the file at ``path``) with the template's identity names replaced by ``names``."""
    rules = [r for r in RULES if r.only in (None, path) and not (r.replace == "{owner}" and names.owner is None)]
    combined = re.compile("|".join(f"(?P<r{i}>{r.pattern})" for i, r in enumerate(rules)), re.MULTILINE)
    values = _values(names)

    def replace(match: re.Match[str]) -> str:
        rule = next(r for i, r in enumerate(rules) if match.group(f"r{i}") is not None)
        return match.group(0) if rule.replace is None else rule.replace.format(**values)

    # Rules match within a line; only lines that name the template are searched (the combined pattern is slow).
    lines = text.splitlines(keepends=True)
    return "".join(combined.sub(replace, line) if _TRIGGER.search(line) else line for line in lines)


def rename_lock(text: str, names: Names) -> str:
    """uv.lock with the project's own entry renamed and moved to where uv sorts it (so no lock is needed)."""
    separator = "\n[[package]]\n"
    head, *blocks = text.split(separator)
    own = f'name = "{TEMPLATE_PACKAGE}"\n'
    mine = [
        i
        for i, b in enumerate(blocks)
        if b.startswith(own) and re.search(r'^source = \{ (editable|virtual) = "\." \}', b, re.M)
    ]
    if len(mine) != 1:
        return text  # no entry of the project's own: nothing to rename
    # Every block ends with one newline (the blank line between blocks is in the separator), so blocks move.
    block = f'name = "{names.slug}"\n' + blocks.pop(mine[0])[len(own) :]
    position = next((i for i, b in enumerate(blocks) if _lock_name(b) > names.slug), len(blocks))
    blocks.insert(position, block)
    return separator.join([head, *blocks])


def _lock_name(block: str) -> str:
    match = re.match(r'name = "([^"]+)"', block)
    return match.group(1) if match else ""


def _hatch_packages(text: str, names: Names) -> str:
    """pyproject.toml naming the package directory when it differs from the distribution's name."""
    if names.slug.replace("-", "_") == names.package or "[tool.hatch.build.targets.wheel]" in text:
        return text
    table = (
        f'\n[tool.hatch.build.targets.wheel]\npackages = ["src/{names.package}"]  # the distribution is {names.slug}\n'
    )
    match = re.search(r"^\[build-system\]\n(?:.+\n)*", text, re.MULTILINE)
    at = match.end() if match else len(text)
    return text[:at] + table + text[at:]


# --- rename: plan, then write ------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a rename writes, computed before anything is written.

    Applied in order: ``moves`` (whole directories or files, like ``git mv``), ``removals``, ``writes``
    (keyed by the path after the moves). A skeleton step (replacing the sample problem by a minimal one)
    adds the problem directory to ``removals`` and the skeleton's files to ``writes``.
    """

    moves: list[tuple[str, str]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    writes: dict[str, bytes] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)  # other spellings left unchanged: path:line: text


def plan_rename(root: Path, answers: Answers) -> Plan:
    """The moves and the new contents of every tracked file that names the template (reads, writes nothing)."""
    names, plan = answers.names, Plan()
    for mode, path in _tracked(root):
        renamed = rename_text(path, path, names) if path not in NOT_RENAMED else path
        old_parts, new_parts = path.split("/"), renamed.split("/")
        for depth, (old_part, new_part) in enumerate(zip(old_parts, new_parts, strict=True)):
            move = ("/".join([*new_parts[:depth], old_part]), "/".join(new_parts[: depth + 1]))
            if old_part != new_part and move not in plan.moves:  # a directory moves once, with all it holds
                plan.moves.append(move)
        if mode not in {"100644", "100755"} or path in NOT_RENAMED:  # symlinks, submodules
            continue
        raw = (root / path).read_bytes()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            continue
        if "\0" in text:
            continue
        if path == "uv.lock":
            new = rename_lock(text, names)
        else:
            new = rename_text(text, path, names)
            if path == "pyproject.toml":
                new = _hatch_packages(new, names)
        if new != text:
            plan.writes[renamed] = new.encode()
        plan.leftovers += [
            f"{renamed}:{n}: {line.strip()}" for n, line in enumerate(new.splitlines(), 1) if _ANY_SPELLING.search(line)
        ]
    plan.moves.sort(key=lambda move: (move[0].count("/"), move))  # a directory moves before what it holds
    plan.writes[ANSWERS_FILE] = answers.to_json().encode()
    if answers.skeleton:
        _add_skeleton(plan, root, names)
    return plan


def _add_skeleton(plan: Plan, root: Path, names: Names) -> None:
    """Replace the sample problem by the minimal one under :data:`SKELETON`: its package, tests and params."""
    for target in _SKELETON_PLACES.values():
        if (root / target.format(package=TEMPLATE_PACKAGE)).exists():  # where it is now, before the moves
            plan.removals.append(target.format(package=names.package))  # where it is after them
    plan.removals += [path for path in _SAMPLE_ONLY if (root / path).exists()]
    for path in [p for p in plan.writes if any(p == r or p.startswith(f"{r}/") for r in plan.removals)]:
        del plan.writes[path]  # the sample's renamed files: they go with it
    tracked = [path for _, path in _tracked(root)]  # git's files only: no bytecode or editor leftovers
    for source, target in _SKELETON_PLACES.items():
        origin = f"{SKELETON}/{source}"
        for file in (f for f in tracked if f == origin or f.startswith(f"{origin}/")):
            path = target.format(package=names.package) + file.removeprefix(origin)
            plan.writes[path] = rename_text((root / file).read_text(), path, names).encode()


def check_rename(root: Path, answers: Answers, *, environment: bool = True) -> list[str]:
    """Every reason to refuse the rename, all at once (empty when it may go ahead)."""
    problems = check_names(answers.names, root, environment=environment)
    if (root / ANSWERS_FILE).exists():
        problems.append(f"{ANSWERS_FILE} exists: this project is already renamed (take template changes with update)")
    if not (root / "src" / TEMPLATE_PACKAGE).is_dir():
        problems.append(f"src/{TEMPLATE_PACKAGE}/ is missing: this is not the template's layout")
    dirty = _git(root, "status", "--porcelain", "--untracked-files=normal").splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        problems.append(f"the working tree has uncommitted changes ({shown}): commit or stash them first")
    if answers.skeleton and not (root / SKELETON / "problem").is_dir():
        problems.append(f"{SKELETON}/problem is missing: --skeleton needs the template's skeleton")
    return problems


def rename(root: Path, answers: Answers, *, environment: bool = True) -> Plan:
    """Rename the project in ``root`` to ``answers.names`` and write the answers file; refuse before writing."""
    root = _toplevel(root)
    problems = check_rename(root, answers, environment=environment)
    if problems:
        raise TemplateError("refusing to rename:\n" + "\n".join(f"- {p}" for p in problems))
    plan = plan_rename(root, answers)
    taken = [new for _, new in plan.moves if (root / new).exists()]
    if taken:
        raise TemplateError(f"refusing to rename: {', '.join(taken)} already exist")
    done: list[str] = []
    try:
        for old, new in plan.moves:
            (root / new).parent.mkdir(parents=True, exist_ok=True)
            (root / old).rename(root / new)  # the whole directory, untracked files included, like git mv
            done.append(f"moved {old} to {new}")
        for path in plan.removals:
            if (root / path).is_dir():
                shutil.rmtree(root / path)
            else:
                (root / path).unlink()
            done.append(f"removed {path}")
        for path, content in plan.writes.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)  # in place: keeps the file's mode
            done.append(f"wrote {path}")
    except OSError as exc:
        raise TemplateError(
            f"the rename failed midway ({exc}) after {len(done)} steps; the tree is half-renamed: "
            "`git status` shows what changed, `git checkout -- . && git clean -fd` puts it back"
        ) from exc
    return plan


def replay(root: str, answers_json: str) -> None:
    """Replay a rename with recorded answers in a clean checkout of the template (``update`` calls this).

    Keep this signature: a later template's ``update`` loads this file from an earlier commit and calls it.
    """
    rename(Path(root), Answers.from_json(answers_json), environment=False)


# --- update --------------------------------------------------------------------------------------------


def is_user_owned(path: str, package: str) -> bool:
    """Whether ``path`` is one of :data:`USER_OWNED` for a project whose package is ``package``."""
    return _matches(path, [p.format(package=package) for p in USER_OWNED])


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(path.startswith(p[:-2]) if p.endswith("/**") else path == p for p in patterns)


@dataclass
class Update:
    """A made update branch: what it applied and what it left for the user."""

    branch: str
    base: str
    target: str
    applied: list[str]
    skipped: dict[str, str]  # user-owned path → the template's diff of it ("" when not shown)
    message: str


# Loads the template's copy of this module from a path and replays the rename (no package import needed).
_REPLAY = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_template_replay', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = module\n"
    "spec.loader.exec_module(module)\n"
    "module.replay(sys.argv[2], sys.argv[3])\n"
)
_RENDER_IDENTITY = {
    "GIT_AUTHOR_NAME": "template render",
    "GIT_AUTHOR_EMAIL": "render@template.invalid",
    "GIT_COMMITTER_NAME": "template render",
    "GIT_COMMITTER_EMAIL": "render@template.invalid",
}


def update(
    root: Path,
    *,
    to: str | None = None,
    template: str | None = None,
    python: str = sys.executable,
) -> Update | None:
    """Make a branch with the template's changes from the recorded commit to ``to`` (default: its HEAD).

    Returns None when the project is already at ``to``. Raises :class:`TemplateError` on a dirty tree, a
    missing answers file, an existing branch, or a conflict (then nothing is created).
    """
    root = _toplevel(root)
    answers_path = root / ANSWERS_FILE
    if not answers_path.is_file():
        raise TemplateError(f"no {ANSWERS_FILE}: run `template rename` first (it records the template commit)")
    current = answers_path.read_text()
    answers = Answers.from_json(current)
    if _git(root, "status", "--porcelain", "--untracked-files=normal").strip():
        raise TemplateError("the working tree has uncommitted changes: commit or stash them first")
    head = _git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()
    identity = _identity(root)
    source = _absolute(template or answers.source, root)
    with tempfile.TemporaryDirectory(prefix="template-update-") as tmp:
        clone = Path(tmp) / "template"
        _git(Path(tmp), "clone", "--quiet", "--no-checkout", source, str(clone))
        base = _resolve(clone, answers.commit, f"the recorded commit {answers.commit} is not in {source}")
        target = _resolve(clone, to or "HEAD", f"{to} is not a commit of {source}")
        if base == target or _git_ok(clone, "merge-base", "--is-ancestor", target, base):
            return None  # the project has that commit already
        branch = f"{BRANCH_PREFIX}{target[:12]}"
        if _git_ok(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
            raise TemplateError(f"branch {branch} exists: merge or delete it first (git branch -D {branch})")
        package = answers.names.package
        old = _render(clone, base, Path(tmp) / "old", current, python)
        advanced = Answers(source, target, answers.names, answers.skeleton)  # --template, if given, is recorded
        new = _render(clone, target, Path(tmp) / "new", advanced.to_json(), python)
        theirs_tree = _restricted_tree(clone, old, new, package, Path(tmp) / "index")
        _git(clone, "fetch", "--quiet", "--no-tags", str(root), f"+{head}:refs/project/head")
        merge_base = _commit(clone, f"{old}^{{tree}}", [], "old render", _RENDER_IDENTITY)
        ours = _commit(clone, f"{head}^{{tree}}", [merge_base], "the project", _RENDER_IDENTITY)
        theirs = _commit(clone, theirs_tree, [merge_base], "new render, template-owned paths", _RENDER_IDENTITY)
        merged = _run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs], clone)
        tree, *conflicted = [p for p in merged.stdout.split("\0") if p]
        if merged.returncode == 1:
            files = sorted(set(conflicted))
            hunks = _diff(clone, old, new, files)
            raise TemplateError(
                f"the template's changes from {base[:12]} to {target[:12]} conflict with yours in: "
                f"{', '.join(files)}. Nothing was changed. Merge these by hand (the template's change is below), "
                f"commit, and run update again.\n{hunks}"
            )
        if merged.returncode != 0:
            raise TemplateError(f"git merge-tree failed: {merged.stderr.strip()}")
        changed = _git(clone, "diff", "--name-only", "-z", f"{head}^{{tree}}", tree).split("\0")
        applied = sorted(p for p in changed if p and p != ANSWERS_FILE)
        skipped = _skipped(clone, old, new, package)
        log = _git(clone, "log", "--format=- %h %s", f"{base}..{target}").strip()
        message = _message(base=base, target=target, source=source, log=log, applied=applied, skipped=skipped)
        result = _commit(clone, tree, [head], message, identity)
        _git(clone, "update-ref", "refs/heads/result", result)
        _git(
            root,
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            str(clone),
            f"refs/heads/result:refs/heads/{branch}",
        )
    return Update(branch, base, target, applied, skipped, message)


def _render(clone: Path, commit: str, where: Path, answers_json: str, python: str) -> str:
    """The template at ``commit`` renamed with the answers by its own copy of this module; a commit in ``clone``."""
    _git(clone, "worktree", "add", "--quiet", "--detach", str(where), commit)
    module = where / "src" / TEMPLATE_PACKAGE / "template.py"
    if not module.is_file():
        raise TemplateError(f"the template at {commit[:12]} has no src/{TEMPLATE_PACKAGE}/template.py to replay")
    done = _run([python, "-I", "-c", _REPLAY, str(module), str(where), answers_json], where)
    if done.returncode != 0:
        raise TemplateError(f"replaying the rename at {commit[:12]} failed:\n{done.stderr.strip()}")
    (where / ANSWERS_FILE).write_text(answers_json)
    _git(where, "add", "--all")
    _git(where, "commit", "--quiet", "--no-verify", "-m", f"render of {commit}", env=_RENDER_IDENTITY)
    return _git(where, "rev-parse", "HEAD").strip()


def _restricted_tree(clone: Path, old: str, new: str, package: str, index: Path) -> str:
    """The new render's tree with every user-owned path as in the old render (the answers file from the new)."""

    def entries(commit: str) -> dict[str, str]:
        listed = _git(clone, "ls-tree", "-r", "-z", "--full-tree", commit)
        return {line.split("\t", 1)[1]: line for line in listed.split("\0") if line}

    before, after = entries(old), entries(new)

    def mine(path: str) -> bool:
        return is_user_owned(path, package) and path != ANSWERS_FILE

    kept = {p: e for p, e in after.items() if not mine(p)} | {p: e for p, e in before.items() if mine(p)}
    env = {"GIT_INDEX_FILE": str(index)}
    _git(clone, "read-tree", "--empty", env=env)
    _git(clone, "update-index", "-z", "--index-info", env=env, stdin="".join(f"{kept[p]}\0" for p in sorted(kept)))
    return _git(clone, "write-tree", env=env).strip()


def _skipped(clone: Path, old: str, new: str, package: str) -> dict[str, str]:
    """The template's changes to user-owned paths: path → its diff ("" when generated or too long)."""
    listed = _git(clone, "diff", "--name-only", "-z", old, new).split("\0")
    paths = sorted(p for p in listed if p and is_user_owned(p, package) and p != ANSWERS_FILE)
    shown = {}
    for path in paths:
        diff = "" if _matches(path, _GENERATED) else _diff(clone, old, new, [path])
        shown[path] = diff if diff.count("\n") <= _SKIPPED_DIFF_LINES else ""
    return shown


def _diff(clone: Path, old: str, new: str, paths: list[str]) -> str:
    return _git(clone, "diff", "--no-color", old, new, "--", *paths) if paths else ""


def _message(*, base: str, target: str, source: str, log: str, applied: list[str], skipped: dict[str, str]) -> str:
    lines = [
        f"template: update from {base[:12]} to {target[:12]}",
        "",
        f"The template's changes since {base[:12]} ({source}), replayed on this project's names:",
        log or "- (no commits)",
        "",
        f"Applied to {len(applied)} template-owned file(s): " + (", ".join(applied) or "none") + ".",
    ]
    if skipped:
        lines += ["", "Not applied: these files are yours. Read the template's change and copy what you need:"]
        for path, diff in skipped.items():
            lines.append(f"- {path}" + ("" if diff else " (generated or long: not shown)"))
        for path, diff in skipped.items():
            if diff:
                lines += ["", f"{path}:", "```diff", diff.rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


# --- git -----------------------------------------------------------------------------------------------


def _run(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in _ENV_DROPPED} | dict(env or {})
    return subprocess.run(args, cwd=cwd, env=full, input=stdin, capture_output=True, text=True, check=False)


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> str:
    done = _run(["git", *args], cwd, env, stdin)
    if done.returncode != 0:
        raise TemplateError(f"git {' '.join(args[:3])} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout


def _git_ok(cwd: Path, *args: str) -> bool:
    return _run(["git", *args], cwd).returncode == 0


def _toplevel(root: Path) -> Path:
    done = _run(["git", "rev-parse", "--show-toplevel"], root)
    if done.returncode != 0:
        raise TemplateError(f"{root} is not inside a git repository")
    return Path(done.stdout.strip())


def _tracked(root: Path) -> list[tuple[str, str]]:
    """(mode, path) of every tracked file, sorted by path."""
    listed = _git(root, "ls-files", "-z", "--stage")
    entries = [line.split("\t", 1) for line in listed.split("\0") if line]
    return sorted((meta.split()[0], path) for meta, path in entries)


def _resolve(clone: Path, ref: str, problem: str) -> str:
    for candidate in (ref, f"origin/{ref}"):
        done = _run(["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], clone)
        if done.returncode == 0:
            return done.stdout.strip()
    raise TemplateError(problem)


def _identity(root: Path) -> dict[str, str]:
    """The user's author and committer, as git would use them in ``root``."""
    identity: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        done = _run(["git", "var", f"GIT_{role}_IDENT"], root)
        match = re.match(r"(.*) <(.*)> \d+ [+-]\d{4}$", done.stdout.strip())
        if done.returncode != 0 or not match:
            raise TemplateError("git does not know who you are: set user.name and user.email, then run update again")
        identity |= {f"GIT_{role}_NAME": match.group(1), f"GIT_{role}_EMAIL": match.group(2)}
    return identity


def _commit(clone: Path, tree: str, parents: list[str], message: str, identity: Mapping[str, str]) -> str:
    args = ["commit-tree", tree, *[a for p in parents for a in ("-p", p)], "-F", "-"]
    return _git(clone, *args, env=identity, stdin=message).strip()


def _default_source(root: Path) -> str:
    """Where the template lives: the ``upstream`` remote, else ``origin``, else this repository's path."""
    for remote in ("upstream", "origin"):
        done = _run(["git", "remote", "get-url", remote], root)
        if done.returncode == 0 and done.stdout.strip():
            return _absolute(done.stdout.strip(), root)
    return str(root)


def _absolute(source: str, root: Path) -> str:
    """A relative path to a local template made absolute (from ``root``); a URL as it is."""
    if "://" in source or Path(source).is_absolute() or not (root / source).exists():
        return source
    return str((root / source).resolve())


# --- commands --------------------------------------------------------------------------------------------


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run_command(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except TemplateError as exc:
        _fail(str(exc))
    return None


@app.command("rename")
def rename_command(
    *,
    package: Annotated[str, typer.Option(help="your import package, e.g. churnguard (src/<package>/)")],
    project: Annotated[str, typer.Option(help="your project's display name, e.g. 'Churn Guard'")],
    slug: Annotated[
        str | None, typer.Option(help="distribution, CLI, model, image and k8s name (default: from --project)")
    ] = None,
    service_class: Annotated[str | None, typer.Option(help="BentoML service class (default: from --project)")] = None,
    owner: Annotated[str | None, typer.Option(help="CODEOWNERS owner, e.g. @my-org/ml-team")] = None,
    template: Annotated[
        str | None, typer.Option(help="the template's git URL or path to record (default: upstream, else origin)")
    ] = None,
    commit: Annotated[str | None, typer.Option(help="the template commit this tree is (default: HEAD)")] = None,
    skeleton: Annotated[bool, typer.Option(help="also replace the sample problem by a minimal skeleton")] = False,
    root: Annotated[Path, typer.Option(help="the repository to rename")] = Path(),
) -> None:
    """Make this fork your project: rename package, CLI, service, model, image, k8s names; record the answers."""

    def run() -> Plan:
        top = _toplevel(root)
        head = commit or _git(top, "rev-parse", "HEAD").strip()
        names = Names.of(package, project, slug, service_class, owner)
        source = _absolute(template, top) if template else _default_source(top)
        return rename(top, Answers(source, head, names, skeleton))

    plan: Plan = _run_command(run)
    for old, new in plan.moves:
        typer.echo(f"moved {old} -> {new}")
    typer.echo(f"rewrote {len(plan.writes) - 1} files; recorded the answers in {ANSWERS_FILE}")
    if plan.leftovers:
        typer.echo("left as they are (not identity names; check them):")
        for line in plan.leftovers:
            typer.echo(f"  {line}")
    typer.echo(
        "next: .tools/bin/uv sync --locked (installs the renamed package), nox -s lint tests, "
        "git add -A && git commit -m 'Rename the project', then dvc repro (the stages' code moved)"
    )


@app.command("update")
def update_command(
    to: Annotated[
        str | None, typer.Option(help="template commit, tag or branch to update to (default: its HEAD)")
    ] = None,
    template: Annotated[
        str | None, typer.Option(help=f"the template's git URL or path (default: the one in {ANSWERS_FILE})")
    ] = None,
    root: Annotated[Path, typer.Option(help="the project to update")] = Path(),
) -> None:
    """Make a branch with the template's changes since the recorded commit, ready to push as a pull request."""
    made: Update | None = _run_command(lambda: update(root, to=to, template=template))
    if made is None:
        typer.echo("already at that template commit: nothing to do")
        return
    typer.echo(made.message)
    typer.echo(f"made branch {made.branch}; next: git push -u origin {made.branch}, and open a pull request")

"""The GitOps side of a release: the pin each environment's overlay carries, and the overlays as Kubernetes sees them.

``deploy/<environment>/kustomization.yaml`` is what an Argo CD or Flux controller syncs. Its pin is the
``images`` entry (the containerized Bento, by digest when it has one) and the ``commonAnnotations``
naming the Bento, the model version, the git commit and the data hash. Reading a pin checks that
these agree with one another, so a hand edit that breaks them is caught before anything acts on it.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from flightdelay.io.files import atomic_path

ENVIRONMENTS = ("staging", "production", "challenger")
# The strategies under which production's pods send requests to the challenger (deploy/challenger).
CHALLENGED = ("shadow", "ab")
# The base Deployment's placeholder image, until a pin replaces it: `.invalid` never resolves (RFC 2606),
# so an overlay applied before its first release cannot pull an image of that name from any registry.
IMAGE_NAME = "unpinned.invalid/flightdelay"
BENTO_NAME = "flightdelay-service"  # bentofile.yaml `name`
PREFIX = "flightdelay.dev/"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_PINNED_IMAGE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class DeployError(ValueError):
    """A pin or an overlay that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Pin:
    """What an environment runs: one containerized Bento and the lineage of the model inside it."""

    image: str
    tag: str
    digest: str | None
    bento_tag: str
    model_name: str
    model_version: str
    git_commit: str
    data_hash: str

    @staticmethod
    def bento_version(model_version: str, git_commit: str) -> str:
        """The Bento version for a model version built at a commit: ``v<version>-<commit[:8]>``."""
        return f"v{model_version}-{git_commit[:8]}"

    def problems(self) -> list[str]:
        """Why the pin's parts disagree, if they do."""
        found = []
        expected = self.bento_version(self.model_version, self.git_commit)
        if self.tag != expected:
            found.append(f"image tag {self.tag!r} is not {expected!r} (model version {self.model_version}, commit)")
        if self.bento_tag != f"{BENTO_NAME}:{self.tag}":
            found.append(f"bento tag {self.bento_tag!r} does not match image tag {self.tag!r}")
        if self.digest is not None and not _DIGEST.match(self.digest):
            found.append(f"digest {self.digest!r} is not sha256:<64 hex digits>")
        if not re.fullmatch(r"[0-9a-f]{40}", self.git_commit):
            found.append(f"git commit {self.git_commit!r} is not a full commit hash")
        return found

    def annotations(self) -> dict[str, str]:
        return {
            f"{PREFIX}bento-tag": self.bento_tag,
            f"{PREFIX}model-name": self.model_name,
            f"{PREFIX}model-version": self.model_version,
            f"{PREFIX}git-commit": self.git_commit,
            f"{PREFIX}data-hash": self.data_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        image = f"{self.image}@{self.digest}" if self.digest else f"{self.image}:{self.tag}"
        return (
            f"{self.model_name} v{self.model_version} in {self.bento_tag}, image {image}, "
            f"commit {self.git_commit[:12]}, data {self.data_hash}"
        )


def overlay(root: Path, environment: str) -> Path:
    if environment not in ENVIRONMENTS:
        raise DeployError(f"unknown environment {environment!r}; expected one of {', '.join(ENVIRONMENTS)}")
    return root / "deploy" / environment / "kustomization.yaml"


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DeployError(f"{path} does not exist")
    return _parse(path.read_text(), str(path))


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeployError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != "Kustomization":
        raise DeployError(f"{path} is not a kustomization (kind: Kustomization)")
    return document


def read_pin(root: Path, environment: str) -> Pin | None:
    """The environment's pin; None before its first release; :class:`DeployError` when it is inconsistent."""
    path = overlay(root, environment)
    return pin_of(_load(path), str(path))


def pin_of(document: dict[str, Any], path: str) -> Pin | None:
    """The pin a kustomization carries (as read from a file, or from a revision of one)."""
    images = [i for i in document.get("images") or [] if isinstance(i, dict) and i.get("name") == IMAGE_NAME]
    annotations = {
        key.removeprefix(PREFIX): str(value)
        for key, value in (document.get("commonAnnotations") or {}).items()
        if key.startswith(PREFIX)
    }
    if not images and not annotations:
        return None
    where = f"{path} (edited by hand?)"
    if len(images) != 1:
        raise DeployError(f"{where}: expected one `images` entry named {IMAGE_NAME!r}, found {len(images)}")
    missing = [
        k for k in ("bento-tag", "model-name", "model-version", "git-commit", "data-hash") if k not in annotations
    ]
    if missing:
        raise DeployError(f"{where}: commonAnnotations lack {', '.join(PREFIX + k for k in missing)}")
    image = images[0]
    if not image.get("newName") or not image.get("newTag"):
        raise DeployError(f"{where}: the {IMAGE_NAME!r} image needs newName and newTag")
    pin = Pin(
        image=str(image["newName"]),
        tag=str(image["newTag"]),
        digest=str(image["digest"]) if image.get("digest") else None,
        bento_tag=annotations["bento-tag"],
        model_name=annotations["model-name"],
        model_version=annotations["model-version"],
        git_commit=annotations["git-commit"],
        data_hash=annotations["data-hash"],
    )
    problems = pin.problems()
    if problems:
        raise DeployError(f"{where}: the pin is inconsistent: {'; '.join(problems)}")
    return pin


@dataclass(frozen=True)
class PinChange:
    """One commit of an environment's overlay: the pin it left, how (``deploy``, ``rollback``, ``edit``), when, by whom.

    ``approved_by`` and ``run`` come from the commit's trailers (``Approved-by:``, ``Run:``), which the
    release loop writes when a workflow makes the commit (see ``release.provenance``).
    """

    commit: str
    action: str
    pin: Pin | None
    date: str = ""  # the committer date, ISO 8601: when the pin landed on the branch the controller syncs
    approved_by: tuple[str, ...] = ()
    run: str | None = None


# Fields of one commit in `git log`: unit separators between fields, record separators between commits.
_LOG_FORMAT = (
    "%x1e%H%x1f%cI%x1f%s%x1f%(trailers:key=Approved-by,valueonly,separator=%x1d)%x1f%(trailers:key=Run,valueonly)"
)


def history(root: Path, environment: str) -> list[PinChange]:
    """Every commit that changed the environment's overlay, newest first, with the pin it left.

    Git is the record of what ran where: each commit message starts ``deploy(<environment>)`` or
    ``rollback(<environment>)`` when the release loop made it (anything else is a hand edit).
    """
    import subprocess

    path = overlay(root, environment).relative_to(root).as_posix()
    listed = subprocess.run(
        ["git", "log", f"--format={_LOG_FORMAT}", "--", path], cwd=root, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        raise DeployError(f"git log of {path} failed: {listed.stderr.strip()}")
    changes = []
    for record in listed.stdout.split("\x1e")[1:]:
        commit, date, subject, approvers, run = (field.strip() for field in record.split("\x1f"))
        shown = subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, text=True, check=False
        )
        where = f"{path}@{commit[:12]}"
        pin = pin_of(_parse(shown.stdout, where), where) if shown.stdout else None
        action = subject.split("(", 1)[0] if subject.startswith(("deploy(", "rollback(")) else "edit"
        approved = tuple(a.strip() for a in approvers.split("\x1d") if a.strip())
        changes.append(PinChange(commit, action, pin, date, approved, run or None))
    return changes


@dataclass(frozen=True)
class Stint:
    """A pin and the time it was the environment's: from its commit until the next pin (None: still running)."""

    change: PinChange
    until: str | None
    replaced: Pin | None  # the pin it took over from (for a rollback: the version rolled back from)

    def lines(self) -> list[str]:
        """The stint for a reader: when, what, how it got there, who approved it."""
        change, pin = self.change, self.change.pin
        verb = {"deploy": "deployed", "rollback": "rolled back", "edit": "edited by hand"}[change.action]
        if self.replaced is not None:
            verb += f" from v{self.replaced.model_version}"
        head = f"{_when(change.date)} - {_when(self.until) if self.until else 'now'}: "
        if pin is None:
            return [head + f"nothing pinned ({verb} in {change.commit[:12]})"]
        image = f"{pin.image}@{pin.digest}" if pin.digest else f"{pin.image}:{pin.tag} (no digest recorded)"
        who = f"approved by {', '.join(change.approved_by)}" if change.approved_by else "no approval recorded"
        return [
            head + f"{pin.model_name} v{pin.model_version}, {verb} in {change.commit[:12]}",
            f"    bento {pin.bento_tag}, image {image}",
            f"    built from commit {pin.git_commit[:12]}, data {pin.data_hash}",
            f"    {who}" + (f", run {change.run}" if change.run else ""),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.change.date,
            "until": self.until,
            "action": self.change.action,
            "commit": self.change.commit,
            "approved_by": list(self.change.approved_by),
            "run": self.change.run,
            "replaced_version": self.replaced.model_version if self.replaced else None,
            "pin": self.change.pin.as_dict() if self.change.pin else None,
        }


def _when(date: str) -> str:
    """An ISO 8601 commit date as UTC minutes: 2026-11-30 10:02 UTC."""
    import datetime as dt

    return dt.datetime.fromisoformat(date).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def stints(changes: list[PinChange]) -> list[Stint]:
    """What ran from when to when, newest first.

    History starts at the first pin. An edit that left the pin as it was (replicas, say) starts no new
    stint; one that removed the pin does: the environment ran nothing pinned from then on.
    """
    oldest_first: list[PinChange] = []
    for change in reversed(changes):
        current = oldest_first[-1].pin if oldest_first else None
        if change.pin == current and (change.action == "edit" or not oldest_first):
            continue
        oldest_first.append(change)
    found = []
    for index, change in enumerate(oldest_first):
        newer = oldest_first[index + 1] if index + 1 < len(oldest_first) else None
        older = oldest_first[index - 1] if index else None
        found.append(Stint(change, newer.date if newer else None, older.pin if older else None))
    return found[::-1]


def write_pin(root: Path, environment: str, pin: Pin) -> Path:
    """Set the environment's pin, keeping the rest of its kustomization; the file is replaced atomically."""
    problems = pin.problems()
    if problems:
        raise DeployError(f"refusing to write an inconsistent pin: {'; '.join(problems)}")
    path = overlay(root, environment)
    document = _load(path)
    image: dict[str, str] = {"name": IMAGE_NAME, "newName": pin.image, "newTag": pin.tag}
    if pin.digest:
        image["digest"] = pin.digest
    others = [i for i in document.get("images") or [] if not (isinstance(i, dict) and i.get("name") == IMAGE_NAME)]
    document["images"] = [*others, image]
    kept = {k: v for k, v in (document.get("commonAnnotations") or {}).items() if not k.startswith(PREFIX)}
    document["commonAnnotations"] = kept | pin.annotations()
    header = "# The pin is written by `flightdelay promote` / `rollback`; every change is a reviewed commit.\n"
    with atomic_path(path) as tmp:
        tmp.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# --- Rendering: the subset of kustomize the overlays use -----------------------------------------

_SUPPORTED = {
    "apiVersion",
    "kind",
    "namespace",
    "nameSuffix",
    "labels",
    "resources",
    "replicas",
    "images",
    "commonAnnotations",
}
_SCALABLE = {"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"}


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        return [document for document in yaml.safe_load_all(path.read_text()) if document]
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError(f"{path}: not readable YAML: {exc}") from exc


def strategies(root: Path) -> list[str]:
    """The deployment strategies an overlay can choose: the directories under ``deploy/strategies``."""
    found = (root / "deploy" / "strategies").glob("*/kustomization.yaml")
    return sorted(path.parent.name for path in found)


def strategy_of(directory: Path) -> str | None:
    """The strategy an overlay lists among its resources (``../strategies/<name>``); None when it lists none."""
    kustomization = _load(directory / "kustomization.yaml")
    chosen = [e for e in kustomization.get("resources") or [] if _is_strategy(directory, e)]
    if len(chosen) > 1:
        raise DeployError(f"{directory}/kustomization.yaml lists {len(chosen)} strategies {chosen}: choose one")
    return (directory / chosen[0]).resolve().name if chosen else None


def _is_strategy(directory: Path, entry: str) -> bool:
    return (directory / entry).resolve().parent.name == "strategies"


def render(directory: Path, *, strategy: str | None = None) -> list[dict[str, Any]]:
    """The manifests ``kustomize build <directory>`` produces for this template's overlays.

    Only what the overlays use is implemented (resources, namespace, nameSuffix, labels, replicas,
    images, commonAnnotations); anything else is an error, not silently ignored. CI also runs the real
    ``kubectl kustomize`` where it is installed. ``strategy`` renders the overlay as if it listed
    ``../strategies/<strategy>`` instead of the strategy it lists.
    """
    kustomization = _load(directory / "kustomization.yaml")
    unsupported = set(kustomization) - _SUPPORTED
    if unsupported:
        raise DeployError(f"{directory}/kustomization.yaml uses {sorted(unsupported)}, which render() does not support")
    manifests: list[dict[str, Any]] = []
    for target in _resources(directory, kustomization, strategy):
        manifests.extend(render(target) if target.is_dir() else _documents(target))
    _rename(manifests, str(kustomization.get("nameSuffix") or ""))
    for labels in kustomization.get("labels") or []:
        _label(manifests, labels)
    for manifest in manifests:
        if "namespace" in kustomization:
            manifest.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
        for replica in kustomization.get("replicas") or []:
            # kustomize's `replicas` reaches the built-in workload kinds only, never a CRD such as a Rollout.
            if (
                manifest.get("kind") in _SCALABLE
                and manifest.get("metadata", {}).get("name") == replica["name"]
                and "replicas" in manifest.get("spec", {})
            ):
                manifest["spec"]["replicas"] = replica["count"]
        annotations = kustomization.get("commonAnnotations") or {}
        if annotations:
            manifest.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
            template = manifest.get("spec", {}).get("template")
            if isinstance(template, dict):
                template.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
        for container in _containers(manifest):
            for image in kustomization.get("images") or []:
                if container.get("image", "").split("@")[0].split(":")[0] == image["name"]:
                    name = image.get("newName", image["name"])
                    suffix = f"@{image['digest']}" if image.get("digest") else f":{image.get('newTag', 'latest')}"
                    container["image"] = name + suffix
    return manifests


def _resources(directory: Path, kustomization: dict[str, Any], strategy: str | None) -> list[Path]:
    resources = list(kustomization.get("resources") or [])
    if strategy is not None:
        listed = [e for e in resources if _is_strategy(directory, e)]
        if not listed:
            raise DeployError(f"{directory}/kustomization.yaml lists no strategy to replace with {strategy!r}")
        resources = [f"../strategies/{strategy}" if e in listed else e for e in resources]
    missing = [e for e in resources if not (directory / e).exists()]
    if missing:
        raise DeployError(f"{directory}/kustomization.yaml: resources {missing} do not exist")
    return [directory / e for e in resources]


def _rename(manifests: list[dict[str, Any]], suffix: str) -> None:
    """kustomize's ``nameSuffix``: every name gets it, and so does each reference to a ConfigMap of the build."""
    if not suffix:
        return
    config_maps = {str(m.get("metadata", {}).get("name")) for m in manifests if m.get("kind") == "ConfigMap"}
    for manifest in manifests:
        metadata = manifest.setdefault("metadata", {})
        metadata["name"] = f"{metadata.get('name')}{suffix}"
        for container in _containers(manifest):
            for source in container.get("envFrom") or []:
                reference = source.get("configMapRef") or {}
                if reference.get("name") in config_maps:
                    reference["name"] += suffix


def _label(manifests: list[dict[str, Any]], labels: dict[str, Any]) -> None:
    """kustomize's ``labels`` entry: its pairs on every manifest, and on selectors and pod templates if asked."""
    pairs = {str(k): str(v) for k, v in (labels.get("pairs") or {}).items()}
    selectors = bool(labels.get("includeSelectors"))
    for manifest in manifests:
        manifest.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        spec = manifest.get("spec")
        if not isinstance(spec, dict):
            continue
        if selectors and manifest.get("kind") == "Service":
            spec.setdefault("selector", {}).update(pairs)
        elif selectors and isinstance(spec.get("selector"), dict):
            spec["selector"].setdefault("matchLabels", {}).update(pairs)
        template = spec.get("template")
        if (selectors or labels.get("includeTemplates")) and isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def validate(manifests: list[dict[str, Any]], kubernetes_version: str = "1.31.0") -> list[str]:
    """The first problem of each manifest: core kinds against the Kubernetes schemas (strict), CRDs by shape
    and by what they refer to (:func:`rollout_problems`)."""
    import kubernetes_validate

    problems = rollout_problems(manifests)
    for manifest in manifests:
        name = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
        if str(manifest.get("apiVersion", "")).startswith("argoproj.io/"):
            if not manifest.get("spec"):
                problems.append(f"{name}: no spec")
            continue
        try:
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name}: {exc.message} at {'.'.join(str(p) for p in exc.path)}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            problems.append(f"{name}: {exc}")
    return problems


def rollout_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """What an Argo Rollout refers to must be there: its Deployment, its Services, its analysis templates and
    each template argument without a value; and it runs exactly one strategy."""
    names: dict[str, set[str]] = {}
    for manifest in manifests:
        names.setdefault(str(manifest.get("kind")), set()).add(str(manifest.get("metadata", {}).get("name")))
    templates = {
        str(m["metadata"]["name"]): m.get("spec", {})
        for m in manifests
        if m.get("kind") == "AnalysisTemplate" and isinstance(m.get("metadata"), dict)
    }
    problems = []
    for rollout in (m for m in manifests if m.get("kind") == "Rollout"):
        where = f"Rollout/{rollout.get('metadata', {}).get('name')}"
        spec = rollout.get("spec") or {}
        workload = (spec.get("workloadRef") or {}).get("name")
        if workload and workload not in names.get("Deployment", set()):
            problems.append(f"{where}: workloadRef names Deployment {workload}, which is not in the overlay")
        strategy = spec.get("strategy") or {}
        kinds = [k for k in ("canary", "blueGreen") if k in strategy]
        if len(kinds) != 1:
            problems.append(f"{where}: needs exactly one of strategy.canary and strategy.blueGreen, has {kinds}")
            continue
        chosen = strategy[kinds[0]]
        analyses = [step["analysis"] for step in chosen.get("steps") or [] if "analysis" in step]
        analyses += [chosen[k] for k in ("prePromotionAnalysis", "postPromotionAnalysis", "analysis") if k in chosen]
        for key in ("activeService", "previewService", "canaryService", "stableService"):
            service = chosen.get(key)
            if service and service not in names.get("Service", set()):
                problems.append(f"{where}: {key} {service} is not a Service in the overlay")
        for analysis in analyses:
            given = {arg["name"] for arg in analysis.get("args") or []}
            for reference in analysis.get("templates") or []:
                template = templates.get(reference.get("templateName"))
                if template is None:
                    problems.append(f"{where}: analysis template {reference.get('templateName')} is not in the overlay")
                    continue
                needed = {a["name"] for a in template.get("args") or [] if "value" not in a and "valueFrom" not in a}
                if needed - given:
                    problems.append(f"{where}: {reference['templateName']} needs args {sorted(needed - given)}")
    return problems


def example_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """Analysis requests the service would refuse: each web metric's ``jsonBody.flight`` must pass the problem's
    request model (the blue-green check posts the sample problem's example; a project with its own problem puts
    its own there)."""
    from flightdelay.problem import PROBLEM

    model = PROBLEM.request_model()
    problems = []
    for template in (m for m in manifests if m.get("kind") == "AnalysisTemplate"):
        for metric in template.get("spec", {}).get("metrics") or []:
            body = metric.get("provider", {}).get("web", {}).get("jsonBody")
            if not isinstance(body, dict) or "flight" not in body:
                continue
            try:
                model.model_validate(body["flight"])
            except ValueError as exc:
                first = str(exc).splitlines()[1:2] or [str(exc)]
                problems.append(
                    f"AnalysisTemplate/{template['metadata']['name']} {metric.get('name')}: its jsonBody.flight is not "
                    f"a request of this project's problem ({first[0].strip()}): put the problem's example "
                    "(flightdelay.problem's EXAMPLE) there"
                )
    return problems


def challenger_problems(production: list[dict[str, Any]], challenger: list[dict[str, Any]]) -> list[str]:
    """The strategy settings (ConfigMap ``flightdelay-strategy``) must be settings the service accepts;
    production's URLs must name the challenger's Service in production's namespace, and the challenger's
    own must send requests nowhere (it would mirror to, or split with, itself)."""
    from flightdelay.ab import ABSettings
    from flightdelay.shadow import ShadowSettings

    services = {
        (str(m["metadata"]["name"]), m["metadata"].get("namespace")) for m in challenger if m.get("kind") == "Service"
    }
    problems = []
    for side, manifests in (("production", production), ("challenger", challenger)):
        for settings in (m for m in manifests if m.get("kind") == "ConfigMap"):
            name, namespace = settings["metadata"]["name"], settings["metadata"].get("namespace")
            if not str(name).startswith("flightdelay-strategy"):
                continue
            where = f"{side}: ConfigMap/{name}"
            data = {str(k): str(v) for k, v in (settings.get("data") or {}).items()}
            try:
                read = (ShadowSettings.from_environment(data), ABSettings.from_environment(data))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            urls = [s.url for s in read if s is not None]
            if side == "challenger" and urls:
                problems.append(f"{where}: sends requests to {', '.join(urls)}; the challenger must only answer")
                continue
            for url in urls:
                host = urllib.parse.urlsplit(url).hostname or ""
                if not any(
                    host in (n, f"{n}.{ns}", f"{n}.{ns}.svc", f"{n}.{ns}.svc.cluster.local")
                    for n, ns in services
                    if ns == namespace
                ):
                    known = ", ".join(sorted(f"{n} in {ns}" for n, ns in services)) or "none"
                    problems.append(f"{where}: {url} is not the challenger's Service ({known}) in {namespace}")
    return problems


# --- Operational monitoring: the Prometheus rules and scrape configuration under deploy/monitoring ---

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def promql_problems(expr: str, where: str) -> list[str]:
    """Parse ``expr`` as PromQL (promql-parser, the Rust parser's Python binding)."""
    import promql_parser

    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        return [f"{where}: PromQL does not parse: {exc}"]
    return []


def series(expr: str) -> set[str]:
    """The metric names an expression selects, from its syntax tree."""
    import promql_parser

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:  # a selector by labels alone has no name
                found.add(node.name)
            return
        for attribute in ("vector_selector", "expr", "param", "lhs", "rhs", "args"):
            child = getattr(node, attribute, None)
            for item in child if isinstance(child, list) else [child]:
                if item is not None:
                    walk(item)

    walk(promql_parser.parse(expr))
    return found


def _rule_problems(rule: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    name = rule.get("alert") or rule.get("record")
    if not name or ("alert" in rule) == ("record" in rule):
        return [f"{where}: needs exactly one of alert or record"]
    problems = [f"{where}: {name} is defined twice"] if name in seen else []
    seen.add(name)
    if not isinstance(rule.get("expr"), str):
        return [*problems, f"{where} ({name}): no expr"]
    problems += promql_problems(rule["expr"], f"{where} ({name})")
    if "for" in rule and not _DURATION.match(str(rule["for"])):
        problems.append(f"{where} ({name}): `for: {rule['for']}` is not a duration")
    unknown = set(rule) - {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
    if unknown:
        problems.append(f"{where} ({name}): unknown keys {sorted(unknown)}")
    return problems


def monitoring_problems(root: Path) -> list[str]:
    """The alert rules and the scrape configuration, checked offline: structure, PromQL, durations."""
    directory = root / "deploy" / "monitoring"
    problems: list[str] = []
    rules_path = directory / "alerts.yml"
    try:
        rules = yaml.safe_load(rules_path.read_text())
        config = yaml.safe_load((directory / "prometheus.yml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [f"deploy/monitoring: {exc}"]
    seen: set[str] = set()
    for group in rules.get("groups") or [] if isinstance(rules, dict) else []:
        for index, rule in enumerate(group.get("rules") or []):
            problems += _rule_problems(rule, f"alerts.yml {group.get('name')}[{index}]", seen)
    if not seen:
        problems.append("alerts.yml: no rules")
    jobs = [c.get("job_name") for c in (config or {}).get("scrape_configs") or []]
    if "flightdelay" not in jobs:
        problems.append('prometheus.yml: no scrape job named flightdelay (the alerts select job="flightdelay")')
    for listed in (config or {}).get("rule_files") or []:
        if not (directory / listed).is_file():
            problems.append(f"prometheus.yml: rule file {listed} does not exist")
    for name, query in _canary_queries(root):
        problems += promql_problems(query, f"analysis template {name}")
    return problems


def base_image_problems(root: Path) -> list[str]:
    """The Bento's base image must be pinned by digest: a tag moves, and the image would change under the lock."""
    try:
        docker = (yaml.safe_load((root / "bentofile.yaml").read_text()) or {}).get("docker") or {}
    except (OSError, yaml.YAMLError) as exc:
        return [f"bentofile.yaml: {exc}"]
    image = docker.get("base_image")
    if not isinstance(image, str) or not _PINNED_IMAGE.match(image):
        return [
            f"bentofile.yaml: docker.base_image {image!r} is not pinned by digest "
            "(want name:tag@sha256:<64 hex>; `docker buildx imagetools inspect NAME:TAG` prints the digest)"
        ]
    return []


def _canary_queries(root: Path) -> list[tuple[str, str]]:
    """The Prometheus queries of every strategy's analysis templates, by metric name."""
    queries = []
    for strategy in strategies(root):
        for path in sorted((root / "deploy" / "strategies" / strategy).glob("*.yaml")):
            for document in _documents(path):
                if document.get("kind") != "AnalysisTemplate":
                    continue
                for metric in document.get("spec", {}).get("metrics") or []:
                    query = metric.get("provider", {}).get("prometheus", {}).get("query")
                    if query:
                        queries.append((f"{strategy}: {metric.get('name')}", str(query)))
    return queries


def alert_series(root: Path) -> set[str]:
    """Every metric name the alert rules and the canary analysis select: the service must expose them."""
    directory = root / "deploy" / "monitoring"
    names: set[str] = set()
    for group in yaml.safe_load((directory / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            names |= series(rule["expr"])
    for _, query in _canary_queries(root):
        names |= series(query)
    return names

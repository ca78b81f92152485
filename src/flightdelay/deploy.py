"""The GitOps side of a release: the pin each environment's overlay carries, and the overlays as Kubernetes sees them.

``deploy/<environment>/kustomization.yaml`` is what an Argo CD or Flux controller syncs. Its pin is the
``images`` entry (the containerized Bento, by digest when it has one) and the ``commonAnnotations``
naming the Bento, the model version, the git commit and the data hash. Reading a pin checks that
these agree with one another, so a hand edit that breaks them is caught before anything acts on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from flightdelay.io.files import atomic_path

ENVIRONMENTS = ("staging", "production")
IMAGE_NAME = "flightdelay"  # the base Deployment's placeholder image
BENTO_NAME = "flightdelay-service"  # bentofile.yaml `name`
PREFIX = "flightdelay.dev/"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


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
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DeployError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != "Kustomization":
        raise DeployError(f"{path} is not a kustomization (kind: Kustomization)")
    return document


def read_pin(root: Path, environment: str) -> Pin | None:
    """The environment's pin; None before its first release; :class:`DeployError` when it is inconsistent."""
    path = overlay(root, environment)
    document = _load(path)
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

_SUPPORTED = {"apiVersion", "kind", "namespace", "resources", "replicas", "images", "commonAnnotations"}


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            yield document


def render(directory: Path) -> list[dict[str, Any]]:
    """The manifests ``kustomize build <directory>`` produces for this template's overlays.

    Only what the overlays use is implemented (resources, namespace, replicas, images,
    commonAnnotations); anything else is an error, not silently ignored. CI also runs the real
    ``kubectl kustomize`` where it is installed.
    """
    kustomization = _load(directory / "kustomization.yaml")
    unsupported = set(kustomization) - _SUPPORTED
    if unsupported:
        raise DeployError(f"{directory}/kustomization.yaml uses {sorted(unsupported)}, which render() does not support")
    manifests: list[dict[str, Any]] = []
    for entry in kustomization.get("resources") or []:
        target = directory / entry
        manifests.extend(render(target) if target.is_dir() else _documents(target))
    for manifest in manifests:
        if "namespace" in kustomization:
            manifest.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
        for replica in kustomization.get("replicas") or []:
            if manifest.get("metadata", {}).get("name") == replica["name"] and "replicas" in manifest.get("spec", {}):
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


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def validate(manifests: list[dict[str, Any]], kubernetes_version: str = "1.31.0") -> list[str]:
    """The first problem of each manifest: core kinds against the Kubernetes schemas (strict), CRDs by shape."""
    import kubernetes_validate

    problems = []
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

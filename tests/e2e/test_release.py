"""The release loop with the real tools: `mlflow server` processes, `bentoml build`, the built Bento served by
`bentoml serve`, and git commits of the overlays.

One project goes through register -> build -> serve -> smoke -> staging -> production -> a second release ->
production -> rollback; the refusals run against the state that chain leaves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from flightdelay import deploy, registry
from flightdelay.io.bento import free_port
from tests.conftest import ROOT
from tests.e2e.conftest import Project, clone_template, environment

pytestmark = pytest.mark.slow


@dataclass
class Released:
    project: Project
    outputs: list[str]
    tracking_uri: str

    def cli(self, *args: str, check: bool = True) -> str:
        done = self.project.cli(*args, check=check)
        return done.stdout + done.stderr

    def pin(self, environment: str) -> deploy.Pin | None:
        return deploy.read_pin(self.project.path, environment)

    @contextmanager
    def registry(self) -> Iterator[None]:
        """The project's registry, through the module's `mlflow server` (not the per-test store)."""
        saved = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
        try:
            with registry.connect(self.project.path):
                yield
        finally:
            if saved is not None:
                os.environ["MLFLOW_TRACKING_URI"] = saved

    def aliases(self) -> dict[str, str | None]:
        with self.registry():
            held = {alias: registry.by_alias(alias) for alias in registry.ALIASES}
            return {alias: version.number if version else None for alias, version in held.items()}

    def version_count(self) -> int:
        with self.registry():
            return len(registry.versions())


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Released]:
    tmp = tmp_path_factory.mktemp("release")
    env = environment(tmp) | {"BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI")
    project = clone_template(tmp / "repo", env)
    project.dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"))
    project.dvc("checkout")
    # The first release as a user runs it: no MLFLOW_TRACKING_URI, so it starts its own `mlflow server`.
    outputs = [project.cli("release", "--commit").stdout]
    # The rest share one server on the same store (each start costs ~13 s), as CI shares a real one.
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        with registry.connect(project.path) as url:
            if saved is not None:
                os.environ["MLFLOW_TRACKING_URI"] = saved
            project.env["MLFLOW_TRACKING_URI"] = url
            outputs.append(project.cli("promote", "production", "--commit").stdout)
            # Second release from the next commit, then production again.
            outputs.append(project.cli("release", "--commit").stdout)
            outputs.append(project.cli("promote", "production", "--commit").stdout)
            yield Released(project, outputs, url)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def test_each_release_registers_builds_smoke_tests_and_pins_staging(released: Released) -> None:
    first, _, second, _ = released.outputs
    for number, output in (("1", first), ("2", second)):
        assert "quality gate passed" in output
        assert "model tests passed" in output
        assert f"registered flight-delay v{number} (alias candidate)" in output
        assert f"built Bento flightdelay-service:v{number}-" in output
        assert "answered 25 golden requests as recorded" in output
        assert f"alias staging -> v{number}" in output
    staging = released.pin("staging")
    assert staging is not None
    assert staging.model_version == "2"
    assert staging.bento_tag == f"flightdelay-service:v2-{staging.git_commit[:8]}"
    assert staging.data_hash.endswith(".dir")


def test_production_took_the_staged_version_and_git_records_every_step(released: Released) -> None:
    production = released.pin("production")
    assert production == released.pin("staging")
    assert released.aliases() == {"candidate": "2", "staging": "2", "production": "2", "challenger": None}
    history = released.project.git("log", "--format=%s", "--", "deploy").splitlines()
    assert history[:4] == [
        f"deploy(production): flight-delay v2 ({production.bento_tag})",
        f"deploy(staging): flight-delay v2 ({production.bento_tag})",
        history[2],
        history[3],
    ]
    assert history[2].startswith("deploy(production): flight-delay v1 (flightdelay-service:v1-")
    assert history[3].startswith("deploy(staging): flight-delay v1 (flightdelay-service:v1-")


def test_the_lineage_is_on_the_registered_version(released: Released) -> None:
    with released.registry():
        version = registry.get("2")
    head_of_release = released.pin("production")
    assert head_of_release is not None
    assert version.tags["git_commit"] == head_of_release.git_commit
    assert version.tags["data_dvc_md5"] == head_of_release.data_hash
    assert version.tags["smoke_staging"] == "passed"
    assert len(version.tags["dvc_model_md5"]) == 32
    assert "registration_run_id" in version.tags


def test_rollback_restores_the_previous_pin_and_alias_and_the_rendered_overlay_is_valid(released: Released) -> None:
    before = released.pin("production")
    output = released.cli("rollback", "production", "--commit")
    assert "rolled production back from v2 to flight-delay v1" in output
    after = released.pin("production")
    assert after is not None and before is not None
    assert after.model_version == "1" and after.bento_tag != before.bento_tag
    assert released.aliases()["production"] == "1"
    assert released.project.git("log", "-1", "--format=%s").startswith("rollback(production): flight-delay v1")
    rendered = deploy.render(released.project.path / "deploy" / "production")
    assert deploy.validate(rendered) == []
    images = {
        c["image"] for m in rendered if m["kind"] == "Deployment" for c in m["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"ghcr.io/your-org/flightdelay:{after.tag}"}
    # Nothing older was promoted: a second rollback is refused, and nothing changes.
    refused = released.cli("rollback", "production", check=False)
    assert "nothing to roll back to" in refused
    # Promote forward again so the tests after this one start from v2 in production.
    released.cli("promote", "production", "--commit")
    assert released.aliases()["production"] == "2"


def test_rollback_takes_its_pin_from_git_not_from_a_registry_tag_and_checks_the_image(released: Released) -> None:
    """Registry tags are mutable by anyone with registry access; deploy/'s history is reviewed commits."""
    expected = next(c.pin for c in deploy.history(released.project.path, "production")[1:] if c.pin)
    assert expected is not None and expected.model_version == "1"
    forged = deploy.Pin(**(expected.as_dict() | {"image": "docker.io/attacker/flightdelay"}))
    with released.registry():
        registry.set_tags(registry.get("1"), {"production_pin": json.dumps(forged.as_dict())})
    # A repository other than the configured one is refused, and nothing changes.
    elsewhere = released.project.env | {"FLIGHTDELAY_IMAGE": "ghcr.io/someone-else/flightdelay"}
    done = Project(released.project.path, elsewhere).cli("rollback", "production", check=False)
    assert done.returncode == 1
    assert "names the image ghcr.io/your-org/flightdelay, outside the configured repository" in done.stderr
    assert released.aliases()["production"] == "2"
    released.cli("rollback", "production", "--commit")
    assert released.pin("production") == expected  # git's pin, not the forged tag
    assert released.aliases()["production"] == "1"
    released.cli("promote", "production", "--commit")
    assert released.aliases()["production"] == "2"


def test_a_model_swapped_in_the_artifact_store_is_not_packaged(released: Released) -> None:
    """The registry records the model's sha256 at registration; the build refuses other bytes."""
    with released.registry():
        version = registry.get("1")
    assert len(version.tags["model_sha256"]) == 64
    store = released.project.path / ".mlflow" / "artifacts"
    (model,) = store.rglob(f"{version.run_id}/artifacts/bundle/model.joblib")
    original = model.read_bytes()
    model.write_bytes(original + b"planted")
    try:
        refused = released.cli("package", "--version", "1", check=False)
    finally:
        model.write_bytes(original)
    assert "flight-delay v1's model in the registry hashes to" in refused
    assert f"model_sha256={version.tags['model_sha256']}: not building a Bento from it" in refused


def test_a_version_that_never_passed_staging_is_refused(released: Released) -> None:
    output = released.cli("register")
    assert "registered flight-delay v3" in output
    released.cli("promote", "staging", "--version", "3")  # pinned, but never smoke-tested
    refused = released.cli("promote", "production", check=False)
    assert "flight-delay v3 (flightdelay-service:v3-" in refused
    assert "has not passed the staging smoke test" in refused
    assert released.aliases()["production"] == "2"
    released.project.git("checkout", "--", "deploy")
    with released.registry():
        registry.set_alias(registry.get("2"), "staging")


def test_a_failing_smoke_test_records_nothing(released: Released) -> None:
    with released.registry():
        first_bento = registry.get("1").tags["smoke_staging_bento"]
    # Version 3's golden answers asked of version 1's Bento: the served model version is wrong.
    refused = released.cli("smoke", "--version", "3", "--bento", first_bento, check=False)
    assert "smoke test against http://127.0.0.1:" in refused
    assert "failed for flight-delay v3" in refused and "not v3" in refused
    with released.registry():
        assert "smoke_staging" not in registry.get("3").tags


def test_a_failing_gate_or_model_test_stops_the_chain_before_registration(released: Released, tmp_path: Path) -> None:
    count = released.version_count()
    params = yaml.safe_load((released.project.path / "params.yaml").read_text())
    params["gate"]["minimum"]["test.roc_auc"] = 0.99
    strict = tmp_path / "params.yaml"
    strict.write_text(yaml.safe_dump(params))
    refused = released.cli("register", "--params", str(strict), check=False)
    assert "the quality gate failed; not registered: test.roc_auc = 0." in refused
    assert "below the minimum 0.99" in refused
    failing = released.project.path / "tests" / "model" / "test_zz_broken.py"
    failing.write_text("def test_the_model_is_broken() -> None:\n    assert False, 'planted failure'\n")
    try:
        refused = released.cli("register", check=False)
    finally:
        failing.unlink()
    assert "the model tests failed" in refused and "not registered" in refused
    assert released.version_count() == count


def test_bad_states_get_clear_errors(released: Released) -> None:
    overlay = released.project.path / "deploy" / "production" / "kustomization.yaml"
    original = overlay.read_text()
    overlay.write_text(original.replace("flightdelay.dev/model-version: '2'", "flightdelay.dev/model-version: '7'"))
    try:
        refused = released.cli("rollback", "production", check=False)
        assert "deploy/production/kustomization.yaml (edited by hand?): the pin is inconsistent" in refused
        assert overlay.read_text() != original  # left as found, not rewritten
    finally:
        overlay.write_text(original)
    with released.registry():
        registry.set_alias(registry.get("1"), "production")
    try:
        refused = released.cli("promote", "production", check=False)
        assert "deploy/production pins v2 but the registry's alias production is on v1" in refused
    finally:
        with released.registry():
            registry.set_alias(registry.get("2"), "production")
    assert "flight-delay has no version 99 in the registry" in released.cli("package", "--version", "99", check=False)
    port = free_port()
    env = released.project.env | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}  # nothing listens there
    done = Project(released.project.path, env).cli("rollback", "production", check=False)
    assert done.returncode == 1
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in done.stderr


def test_under_a_shadow_production_takes_what_the_challenger_ran_not_what_staging_moved_to(released: Released) -> None:
    """The challenger gets staging's smoke-tested pin; once production's strategy compares the two, a promotion
    of production takes the challenger's pin (the version the comparison was about), whatever staging runs."""
    path, start = released.project.path, released.project.git("rev-parse", "HEAD").strip()
    released.cli("rollback", "production", "--commit")  # production on v1, staging and then the challenger on v2
    output = released.cli("promote", "challenger", "--commit")
    assert "wrote deploy/challenger/kustomization.yaml" in output
    assert released.pin("challenger") == released.pin("staging")
    assert released.project.git("log", "-1", "--format=%s").startswith("deploy(challenger): flight-delay v2")
    assert released.aliases() | {"candidate": None} == {
        "candidate": None,
        "staging": "2",
        "production": "1",
        "challenger": "2",
    }
    released.cli("rollback", "staging", "--commit")  # staging moves on (back to v1) while the shadow runs
    overlay = path / "deploy" / "production" / "kustomization.yaml"
    kustomization = yaml.safe_load(overlay.read_text())  # as promote wrote it
    kustomization["resources"] = [
        r.replace("strategies/canary", "strategies/shadow") for r in kustomization["resources"]
    ]
    overlay.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    released.project.git("commit", "--quiet", "-am", "production: shadow the challenger")
    assert "production with strategy shadow (chosen): valid" in released.cli("deploy-check")
    released.cli("promote", "production", "--commit")
    assert released.pin("production") == released.pin("challenger")
    assert released.aliases()["production"] == "2" and released.aliases()["staging"] == "1"
    # Without the challenger's pin there is nothing the comparison was about: refused, and nothing changes.
    stints = released.cli("history", "challenger")
    assert stints.startswith("challenger: 1 pins, 0 of them rollbacks") and "flight-delay v2, deployed in" in stints
    production = overlay.read_text()
    released.project.git("checkout", "--quiet", start, "--", "deploy/challenger")
    refused = released.cli("promote", "production", check=False)
    assert "challenger runs nothing yet: promote to challenger first" in refused
    assert overlay.read_text() == production and released.aliases()["production"] == "2"

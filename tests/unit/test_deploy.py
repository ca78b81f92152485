"""The overlays' pins and the rendering of the overlays, on copies of the real deploy/ tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from flightdelay import deploy
from tests.conftest import ROOT, SAMPLE_PROBLEM

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PIN = deploy.Pin(
    image="ghcr.io/acme/flightdelay",
    tag="v3-01234567",
    digest="sha256:" + "ab" * 32,
    bento_tag="flightdelay-service:v3-01234567",
    model_name="flight-delay",
    model_version="3",
    git_commit=COMMIT,
    data_hash="d4c1048cb4562899d6014e534f77bda0.dir",
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    return tmp_path


def test_the_committed_overlays_render_to_valid_kubernetes(root: Path) -> None:
    for environment in deploy.ENVIRONMENTS:
        manifests = deploy.render(root / "deploy" / environment)
        assert deploy.validate(manifests) == []
        # The challenger runs beside production, where production's pods reach it.
        namespace = "production" if environment == "challenger" else environment
        assert {m["metadata"]["namespace"] for m in manifests} == {f"flightdelay-{namespace}"}
    production = {m["kind"]: m for m in deploy.render(root / "deploy" / "production")}
    assert set(production) == {"Deployment", "Service", "Rollout", "AnalysisTemplate"}
    # The Rollout runs the pods; a Deployment beside it with pods of its own would ship pins outside the canary.
    assert production["Deployment"]["spec"]["replicas"] == 0
    assert production["Rollout"]["spec"]["replicas"] == 3
    assert production["Rollout"]["spec"]["workloadRef"]["name"] == production["Deployment"]["metadata"]["name"]
    assert production["Deployment"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_the_canary_analysis_reads_only_the_canarys_pods_in_its_namespace(root: Path) -> None:
    """Staging and production share a Prometheus; stable pods dilute errors: 4% at 20% weight read as 0.8%."""
    production = {m["kind"]: m for m in deploy.render(root / "deploy" / "production")}
    template = production["AnalysisTemplate"]["spec"]
    assert [a["name"] for a in template["args"]] == ["canary-hash", "namespace"]
    for metric in template["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        assert query.count('rollouts_pod_template_hash="{{args.canary-hash}}"') == 2, query
        assert query.count('namespace="{{args.namespace}}"') == 2, query
    analyses = [s["analysis"] for s in production["Rollout"]["spec"]["strategy"]["canary"]["steps"] if "analysis" in s]
    assert analyses and all(
        {a["name"]: a["valueFrom"] for a in step["args"]}
        == {
            "canary-hash": {"podTemplateHashValue": "Latest"},
            "namespace": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        }
        for step in analyses
    )
    scrape = (root / "deploy" / "monitoring" / "prometheus.yml").read_text()
    assert "target_label: rollouts_pod_template_hash" in scrape and "target_label: namespace" in scrape


def test_a_pin_round_trips_and_reaches_the_pods(root: Path) -> None:
    assert deploy.read_pin(root, "staging") is None
    deploy.write_pin(root, "staging", PIN)
    assert deploy.read_pin(root, "staging") == PIN
    manifests = deploy.render(root / "deploy" / "staging")
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == f"ghcr.io/acme/flightdelay@{PIN.digest}"
    assert pod["metadata"]["annotations"]["flightdelay.dev/model-version"] == "3"  # a new pin rolls the pods
    assert deployment["spec"]["replicas"] == 1  # the rest of the overlay is kept
    assert deploy.validate(manifests) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("flightdelay.dev/model-version: '3'", "flightdelay.dev/model-version: '4'"),
            "image tag 'v3-01234567' is not",
        ),
        (("newTag: v3-01234567", "newTag: v3-deadbeef"), "image tag 'v3-deadbeef'"),
        (("digest: sha256:abab", "digest: md5:abab"), "is not sha256:"),
        (("  flightdelay.dev/data-hash: d4c1048cb4562899d6014e534f77bda0.dir\n", ""), "lack flightdelay.dev/data-hash"),
    ],
)
def test_a_pin_edited_into_inconsistency_is_refused(root: Path, edit: tuple[str, str], message: str) -> None:
    path = deploy.write_pin(root, "production", PIN)
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(deploy.DeployError, match="edited by hand") as raised:
        deploy.read_pin(root, "production")
    assert message in str(raised.value)


def test_an_inconsistent_pin_is_never_written(root: Path) -> None:
    before = (root / "deploy" / "staging" / "kustomization.yaml").read_text()
    bad = deploy.Pin(**(PIN.as_dict() | {"model_version": "9"}))
    with pytest.raises(deploy.DeployError, match="refusing to write an inconsistent pin"):
        deploy.write_pin(root, "staging", bad)
    assert (root / "deploy" / "staging" / "kustomization.yaml").read_text() == before


def test_unknown_environment_and_unsupported_kustomize_fields_are_errors(root: Path) -> None:
    with pytest.raises(deploy.DeployError, match="unknown environment 'qa'"):
        deploy.read_pin(root, "qa")
    path = root / "deploy" / "staging" / "kustomization.yaml"
    document = yaml.safe_load(path.read_text()) | {"patches": [{"path": "x.yaml"}]}
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(deploy.DeployError, match=r"\['patches'\]"):
        deploy.render(root / "deploy" / "staging")


def test_schema_violations_are_reported_with_their_place(root: Path) -> None:
    wrong_type = deploy.render(root / "deploy" / "staging")
    wrong_type[0]["spec"]["replicas"] = "two"
    assert deploy.validate(wrong_type) == [
        "Deployment/flightdelay: 'two' is not of type 'integer', 'null' at spec.replicas"
    ]
    misspelt = deploy.render(root / "deploy" / "staging")
    misspelt[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    (problem,) = deploy.validate(misspelt)
    assert problem.startswith("Deployment/flightdelay:") and "pathh" in problem


def test_the_committed_alert_rules_and_scrape_configuration_are_valid(root: Path) -> None:
    assert deploy.monitoring_problems(root) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("> 0.01", "> > 0.01"), "FlightDelayHighErrorRate): PromQL does not parse"),
        (("for: 10m", "for: ten minutes"), "`for: ten minutes` is not a duration"),
        (("alert: FlightDelayNotReady", "alert: FlightDelayHighLatency"), "FlightDelayHighLatency is defined twice"),
        (("        for: 15m\n", "        for: 15m\n        severity: ticket\n"), "unknown keys ['severity']"),
    ],
)
def test_broken_alert_rules_are_named(root: Path, edit: tuple[str, str], message: str) -> None:
    path = root / "deploy" / "monitoring" / "alerts.yml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1))
    problems = deploy.monitoring_problems(root)
    assert any(message in p for p in problems), problems


def test_the_scrape_job_must_match_the_alerts(root: Path) -> None:
    path = root / "deploy" / "monitoring" / "prometheus.yml"
    path.write_text(path.read_text().replace("job_name: flightdelay", "job_name: flights"))
    assert any("no scrape job named flightdelay" in p for p in deploy.monitoring_problems(root))


def test_the_series_the_alerts_select_come_from_the_syntax_tree() -> None:
    assert deploy.series('abs(sum(rate(a_sum[5m])) - on() max(ref)) > 0 and up{job="x"} == 0') == {"a_sum", "ref", "up"}


def test_the_history_of_an_overlay_is_read_from_git(root: Path) -> None:
    """What ran where, newest first: the pin each commit left and whether the release loop made it."""

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=root, check=True)

    git("init", "--quiet")
    git("add", "deploy")
    git("commit", "--quiet", "-m", "the template")
    four = deploy.Pin(**(PIN.as_dict() | {"model_version": "4", "tag": "v4-01234567"}))
    four = deploy.Pin(**(four.as_dict() | {"bento_tag": "flightdelay-service:v4-01234567"}))
    for pin, message in (
        (PIN, "deploy(production): v3"),
        (four, "deploy(production): v4"),
        (PIN, "rollback(production): v3"),
    ):
        deploy.write_pin(root, "production", pin)
        git("commit", "--quiet", "-am", message)
    changes = deploy.history(root, "production")
    assert [(c.action, c.pin.model_version if c.pin else None) for c in changes] == [
        ("rollback", "3"),
        ("deploy", "4"),
        ("deploy", "3"),
        ("edit", None),
    ]


def test_before_the_first_pin_nothing_pullable_renders(root: Path) -> None:
    """An overlay synced before its first release must not run `flightdelay` from Docker Hub."""
    for environment in deploy.ENVIRONMENTS:
        assert deploy.read_pin(root, environment) is None
        images = {
            c["image"]
            for m in deploy.render(root / "deploy" / environment)
            for c in m.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        }
        assert images == {"unpinned.invalid/flightdelay"}


def test_the_committed_base_image_is_pinned_by_digest() -> None:
    assert deploy.base_image_problems(ROOT) == []


@pytest.mark.parametrize(
    "image",
    [None, "python:3.11-slim", "python:3.11-slim@sha256:abc", "python@sha256:" + "AB" * 32],
)
def test_a_base_image_without_a_digest_is_refused(tmp_path: Path, image: str | None) -> None:
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    bentofile["docker"] = {"base_image": image} if image else {"python_version": "3.11"}
    (tmp_path / "bentofile.yaml").write_text(yaml.safe_dump(bentofile))
    (problem,) = deploy.base_image_problems(tmp_path)
    assert "docker.base_image" in problem
    assert "not pinned by digest" in problem


def test_every_strategy_renders_the_production_overlay_valid(root: Path) -> None:
    assert deploy.strategies(root) == ["ab", "blue-green", "canary", "shadow"]
    assert deploy.strategy_of(root / "deploy" / "production") == "canary"
    assert deploy.strategy_of(root / "deploy" / "staging") is None
    challenger = deploy.render(root / "deploy" / "challenger")
    for strategy in deploy.strategies(root):
        manifests = deploy.render(root / "deploy" / "production", strategy=strategy)
        assert deploy.validate(manifests) == [], strategy
        assert deploy.challenger_problems(manifests, challenger) == [], strategy
        assert {m["metadata"]["namespace"] for m in manifests} == {"flightdelay-production"}


def test_the_challenger_runs_beside_production_with_its_own_pods_pin_and_settings(root: Path) -> None:
    """Production's Service must never select the challenger's pods, nor the challenger read production's settings."""
    other = deploy.Pin(
        **(PIN.as_dict() | {"model_version": "4", "tag": "v4-01234567", "bento_tag": "flightdelay-service:v4-01234567"})
    )
    deploy.write_pin(root, "production", PIN)
    deploy.write_pin(root, "challenger", other)
    assert deploy.read_pin(root, "challenger") == other
    challenger = {m["kind"]: m for m in deploy.render(root / "deploy" / "challenger")}
    production = {m["kind"]: m for m in deploy.render(root / "deploy" / "production", strategy="shadow")}
    assert {m["metadata"]["name"] for m in challenger.values()} == {
        "flightdelay-challenger",
        "flightdelay-strategy-challenger",
    }
    pods = challenger["Deployment"]["spec"]
    own = {"app.kubernetes.io/name": "flightdelay-challenger"}
    assert pods["selector"]["matchLabels"] == own and pods["template"]["metadata"]["labels"] == own
    assert challenger["Service"]["spec"]["selector"] == own
    assert production["Service"]["spec"]["selector"] == {"app.kubernetes.io/name": "flightdelay"}
    (container,) = pods["template"]["spec"]["containers"]
    assert container["envFrom"][0]["configMapRef"]["name"] == "flightdelay-strategy-challenger"
    assert challenger["ConfigMap"].get("data") == {}
    assert container["image"] == f"ghcr.io/acme/flightdelay@{PIN.digest}"  # the challenger's own pin, v4
    assert pods["template"]["metadata"]["annotations"]["flightdelay.dev/model-version"] == "4"
    (production_pod,) = production["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert production_pod["envFrom"][0]["configMapRef"]["name"] == "flightdelay-strategy"
    assert production["ConfigMap"]["data"]["FLIGHTDELAY_SHADOW_URL"] == "http://flightdelay-challenger"
    assert (
        production["Deployment"]["spec"]["template"]["metadata"]["annotations"]["flightdelay.dev/model-version"] == "3"
    )


@pytest.mark.parametrize(
    ("strategy", "edit", "message"),
    [
        (
            "shadow",
            ("http://flightdelay-challenger", "http://flightdelay-preview"),
            "production: ConfigMap/flightdelay-strategy: http://flightdelay-preview is not the challenger's Service "
            "(flightdelay-challenger in flightdelay-production) in flightdelay-production",
        ),
        ("ab", ('"0.5"', '"1.5"'), "FLIGHTDELAY_AB_SHARE=1.5 must be between 0 and 1"),
        ("ab", ("  FLIGHTDELAY_AB_SHARE", "  OTHER"), "set FLIGHTDELAY_AB_SHARE too"),
        ("shadow", ("http://flightdelay-challenger", "flightdelay-challenger:80"), "is not an http(s) URL"),
    ],
)
def test_strategy_settings_the_service_would_refuse_or_that_miss_the_challenger_are_named(
    root: Path, strategy: str, edit: tuple[str, str], message: str
) -> None:
    settings = root / "deploy" / "strategies" / strategy / "strategy-settings.yaml"
    assert edit[0] in settings.read_text()
    settings.write_text(settings.read_text().replace(edit[0], edit[1]))
    manifests = deploy.render(root / "deploy" / "production", strategy=strategy)
    (problem,) = deploy.challenger_problems(manifests, deploy.render(root / "deploy" / "challenger"))
    assert message in problem


def test_a_challenger_that_sends_requests_on_is_named(root: Path) -> None:
    settings = root / "deploy" / "challenger" / "strategy-settings.yaml"
    settings.write_text(
        settings.read_text().replace("data: {}", "data:\n  FLIGHTDELAY_SHADOW_URL: http://flightdelay-challenger")
    )
    challenger = deploy.render(root / "deploy" / "challenger")
    (problem,) = deploy.challenger_problems([], challenger)
    assert problem == (
        "challenger: ConfigMap/flightdelay-strategy-challenger: sends requests to http://flightdelay-challenger; "
        "the challenger must only answer"
    )


def test_blue_green_switches_after_the_preview_answers_as_pinned(root: Path) -> None:
    from flightdelay.problem import EXAMPLE

    deploy.write_pin(root, "production", PIN)
    manifests = deploy.render(root / "deploy" / "production", strategy="blue-green")
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    assert ("Service", "flightdelay-preview") in kinds and ("Rollout", "flightdelay") in kinds
    rollout = next(m for m in manifests if m["kind"] == "Rollout")
    blue_green = rollout["spec"]["strategy"]["blueGreen"]
    assert (blue_green["activeService"], blue_green["previewService"]) == ("flightdelay", "flightdelay-preview")
    assert blue_green["autoPromotionEnabled"] is True and blue_green["scaleDownDelaySeconds"] >= 300
    # The analysis asks the preview for the example and expects the version the pin names, which the
    # Rollout carries as an annotation.
    args = {a["name"]: a["valueFrom"]["fieldRef"]["fieldPath"] for a in blue_green["prePromotionAnalysis"]["args"]}
    assert args["model-version"] == "metadata.annotations['flightdelay.dev/model-version']"
    assert rollout["metadata"]["annotations"]["flightdelay.dev/model-version"] == PIN.model_version
    template = next(m for m in manifests if m["kind"] == "AnalysisTemplate")["spec"]["metrics"][0]
    assert 'result.model_version == "{{args.model-version}}"' in template["successCondition"]
    if SAMPLE_PROBLEM:  # the service's own example request
        assert template["provider"]["web"]["jsonBody"] == {"flight": EXAMPLE}
        assert deploy.example_problems(manifests) == []
    else:  # a project with its own problem is told to put its own example there
        (problem,) = deploy.example_problems(manifests)
        assert "its jsonBody.flight is not a request of this project's problem" in problem
    template["provider"]["web"]["jsonBody"]["flight"] = {"carrier": "UA"}
    (problem,) = deploy.example_problems(manifests)
    assert problem.startswith("AnalysisTemplate/flightdelay-preview-answers preview-answers: its jsonBody.flight")


def test_a_rollout_that_refers_to_what_is_not_there_is_named(root: Path) -> None:
    strategy = root / "deploy" / "strategies" / "blue-green"
    (strategy / "kustomization.yaml").write_text(
        (strategy / "kustomization.yaml").read_text().replace("  - preview-service.yaml\n", "")
    )
    rollout = strategy / "rollout.yaml"
    rollout.write_text(
        rollout.read_text().replace(
            "          - name: namespace\n            valueFrom:", "          - name: ns\n            valueFrom:"
        )
    )
    problems = deploy.validate(deploy.render(root / "deploy" / "production", strategy="blue-green"))
    assert "Rollout/flightdelay: previewService flightdelay-preview is not a Service in the overlay" in problems
    assert "Rollout/flightdelay: flightdelay-preview-answers needs args ['namespace']" in problems
    with pytest.raises(deploy.DeployError, match=r"resources \['../strategies/red-black'\] do not exist"):
        deploy.render(root / "deploy" / "production", strategy="red-black")
    with pytest.raises(deploy.DeployError, match="lists no strategy to replace"):
        deploy.render(root / "deploy" / "staging", strategy="canary")
    production = root / "deploy" / "production" / "kustomization.yaml"
    production.write_text(
        production.read_text().replace(
            "  - ../strategies/canary\n", "  - ../strategies/canary\n  - ../strategies/blue-green\n"
        )
    )
    with pytest.raises(deploy.DeployError, match="lists 2 strategies"):
        deploy.strategy_of(root / "deploy" / "production")

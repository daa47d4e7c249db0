"""Kubernetes and KServe export of an endpoint.

A real workspace: a scikit-learn model is logged and registered, and an Endpoint with three
Deployments is applied from a spec file. Every plain Kubernetes manifest (Deployment, Service)
is validated with ``kubernetes-validate`` against the schemas of Kubernetes 1.33 (a recent
version it ships) in strict mode, so an unknown or misspelt field fails. KServe's
InferenceService is a CRD that kubernetes-validate has no schema for: its structure is checked
with a small JSON schema of exactly the fields the export emits (``additionalProperties:
false`` everywhere, so a stray field fails), and its predictor container is checked strictly
against the Kubernetes Container schema by validating it inside a Pod.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import cauce
from builders import churn_features
from cauce.errors import InvalidInput, NotFound
from cauce.serving.endpoints import set_traffic
from cauce.serving.export import export, export_kserve, export_kubernetes
from cauce.serving.targets.base import k8s_name
from cauce.serving.targets.kserve import KSERVE_NAME_LIMIT
from cauce.specs import apply
from cauce.validation import check_name
from cauce.workspace import Workspace

K8S_VERSION = "1.33"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENDPOINT = "Churn_v2"

SPEC = f"""\
kind: Endpoint
name: {ENDPOINT}
traffic: {{blue: 80, Green.2: 20}}
mirror: {{shadow: 50}}
---
kind: Deployment
endpoint: {ENDPOINT}
name: blue
model: models:/churn/1
---
kind: Deployment
endpoint: {ENDPOINT}
name: Green.2
model: models:/churn/1
workers: 2
batching: {{max_batch_size: 16, max_latency_ms: 5}}
collect: {{requests: true, responses: true, sampling: 0.5}}
---
kind: Deployment
endpoint: {ENDPOINT}
name: shadow
model: models:/churn/1
"""


def _log_model() -> None:
    from sklearn.linear_model import LogisticRegression

    frame = churn_features(40)
    labels = (frame["charges"] > 50).astype(int)
    with cauce.start_run(experiment="churn"):
        cauce.log_model(
            LogisticRegression().fit(frame, labels),
            "model",
            registered_model="churn",
            input_example=frame.head(3),
        )


@pytest.fixture
def endpoint(workspace: Workspace, tmp_path: Path) -> Workspace:
    """The workspace, holding endpoint ``Churn_v2`` with blue (80%), Green.2 (20%), shadow."""
    _log_model()
    spec = tmp_path / "endpoint.yaml"
    spec.write_text(SPEC)
    apply(spec, workspace=workspace)
    return workspace


def _validate(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def _by(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


# -- kubernetes ---------------------------------------------------------------------------------


def test_kubernetes_manifests_are_valid_and_run_the_serving_commands(
    endpoint: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "deploy" / "churn.yaml"
    result = export(ENDPOINT, format="kubernetes", output=out, namespace="ml", workspace=endpoint)
    assert result.paths == [out] and result.warnings == []
    text = out.read_text()
    assert "&id" not in text  # plain YAML, no anchors for repeated label maps
    manifests = list(yaml.safe_load_all(text))
    assert manifests == result.manifests
    for manifest in manifests:
        _validate(manifest)

    # Nothing about the workspace itself is written into a manifest: it comes from the Secret.
    settings = endpoint.settings
    assert settings.db_url not in text and settings.artifacts not in text

    deployments, services = _by(manifests, "Deployment"), _by(manifests, "Service")
    router = k8s_name(ENDPOINT)
    green = k8s_name(ENDPOINT, "Green.2")
    expected = {router, green, k8s_name(ENDPOINT, "blue"), k8s_name(ENDPOINT, "shadow")}
    assert set(deployments) == set(services) == expected and len(manifests) == 8
    assert manifests[0]["kind"] == "Deployment" and manifests[0]["metadata"]["name"] == router
    for name in deployments:
        assert DNS_1035.match(name) and len(name) <= 63
        assert deployments[name]["metadata"]["namespace"] == "ml"

    router_args = deployments[router]["spec"]["template"]["spec"]["containers"][0]["args"]
    urls = [f"{d}=http://{k8s_name(ENDPOINT, d)}:8080" for d in ("Green.2", "blue", "shadow")]
    assert router_args == [
        "endpoints", "serve", ENDPOINT, "--host", "0.0.0.0", "--port", "8080",
        "--no-deployments",
        *[part for url in urls for part in ("--deployment-url", url)],
    ]  # fmt: skip
    for url in urls:
        assert url.split("//")[1].split(":")[0] in services  # each URL is a Service exported

    for raw in ("Green.2", "blue", "shadow"):
        name = k8s_name(ENDPOINT, raw)
        workload = deployments[name]
        pod = workload["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["command"] == ["cauce"]
        assert container["args"] == [
            "deployments", "serve", ENDPOINT, raw, "--host", "0.0.0.0", "--port", "8080"
        ]  # fmt: skip
        assert workload["spec"]["replicas"] == 1
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "cauce"
        assert labels["app.kubernetes.io/name"] == name
        assert labels["cauce.dev/endpoint"] == k8s_name(ENDPOINT)
        assert labels["cauce.dev/deployment"] == k8s_name(raw)
        assert workload["metadata"]["annotations"]["cauce.dev/deployment"] == raw
        assert workload["metadata"]["annotations"]["cauce.dev/model"] == "models:/churn/1"
        # The selectors pick this deployment's pods and no other's.
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector == services[name]["spec"]["selector"]
        assert selector.items() <= labels.items()
        for other in deployments.values():
            if other is not workload:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not selector.items() <= other_labels.items()
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        # Only references to the Secret, no values.
        assert all(set(e) == {"name", "valueFrom"} for e in container["env"])
        secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
        assert secrets == {"cauce-workspace"}
        assert {e["name"] for e in container["env"]} == {"CAUCE_DB_URL", "CAUCE_ARTIFACTS"}
        assert container["envFrom"] == [{"secretRef": {"name": "cauce-workspace"}}]

    green_container = deployments[green]["spec"]["template"]["spec"]["containers"][0]
    blue_container = deployments[k8s_name(ENDPOINT, "blue")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert deployments[green]["metadata"]["annotations"]["cauce.dev/workers"] == "2"
    assert green_container["resources"]["limits"]["cpu"] == "2"
    assert blue_container["resources"]["limits"]["cpu"] == "1"


def test_strict_validation_catches_a_misspelt_field(endpoint: Workspace) -> None:
    """The check above is not vacuous: strict mode rejects a field Kubernetes does not have."""
    workload = export_kubernetes(ENDPOINT, workspace=endpoint)[0]
    broken = copy.deepcopy(workload)
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def test_a_folder_gets_one_file_per_manifest_and_options_apply(
    endpoint: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "manifests"
    resources = {"blue": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}
    result = export(
        ENDPOINT,
        output=folder,
        image="registry.example.com/cauce:dev",
        workspace_secret="prod-workspace",
        resources=resources,
        workspace=endpoint,
    )
    assert len(result.paths) == 8 and all(p.parent == folder for p in result.paths)
    for path in result.paths:
        (manifest,) = yaml.safe_load_all(path.read_text())
        _validate(manifest)
        assert path.name == f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        assert "namespace" not in manifest["metadata"]
        if manifest["kind"] != "Deployment":
            continue
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "registry.example.com/cauce:dev"
        assert container["envFrom"] == [{"secretRef": {"name": "prod-workspace"}}]
        if manifest["metadata"]["name"] == k8s_name(ENDPOINT, "blue"):
            assert container["resources"] == resources["blue"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"resources": {"purple": {"requests": {"cpu": "1"}}}}, "purple"),
        ({"resources": {"blue": {"request": {"cpu": "1"}}}}, "requests"),
        ({"namespace": "Not_A_Namespace"}, "Not_A_Namespace"),
        ({"workspace_secret": "bad secret"}, "bad secret"),
        ({"image": ""}, "image"),
    ],
)
def test_bad_options_are_refused_with_the_value_named(
    endpoint: Workspace, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(field)):
        export_kubernetes(ENDPOINT, workspace=endpoint, **options)


def test_a_missing_endpoint_or_format_is_named(endpoint: Workspace) -> None:
    with pytest.raises(NotFound, match="'nowhere'") as caught:
        export_kubernetes("nowhere", workspace=endpoint)
    assert ENDPOINT in str(caught.value)  # the hint lists the known endpoints
    with pytest.raises(NotFound, match="'nowhere'"):
        export_kserve("nowhere", workspace=endpoint)
    with pytest.raises(InvalidInput, match="'helm'"):
        export(ENDPOINT, format="helm", workspace=endpoint)


def test_an_endpoint_without_deployments_exports_its_router_and_says_so(
    workspace: Workspace, tmp_path: Path
) -> None:
    spec = tmp_path / "empty.yaml"
    spec.write_text("kind: Endpoint\nname: empty\n")
    apply(spec, workspace=workspace)
    result = export("empty", workspace=workspace)
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("Deployment", "empty"),
        ("Service", "empty"),
    ]
    for manifest in result.manifests:
        _validate(manifest)
    assert result.warnings and "no deployments" in result.warnings[0]


# -- kserve -------------------------------------------------------------------------------------

_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": _STR}


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_KSERVE_PROBE = _closed(
    {
        "httpGet": _closed({"path": _STR}, ["path"]),
        "periodSeconds": {"type": "integer"},
        "timeoutSeconds": {"type": "integer"},
        "failureThreshold": {"type": "integer"},
    },
    ["httpGet"],
)
# The fields export_kserve emits, from KServe's v1beta1 API: nothing else is allowed.
INFERENCE_SERVICE = _closed(
    {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": _closed(
            {
                "name": {"type": "string", "pattern": DNS_1035.pattern, "maxLength": 47},
                "namespace": _STR,
                "labels": _STR_MAP,
                "annotations": _STR_MAP,
            },
            ["name"],
        ),
        "spec": _closed(
            {
                "predictor": _closed(
                    {
                        "minReplicas": {"type": "integer", "minimum": 0},
                        "timeout": {"type": "integer", "minimum": 1},
                        "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
                        "containers": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"const": "kserve-container"},
                                    "ports": {"type": "array", "maxItems": 1},
                                    "livenessProbe": _KSERVE_PROBE,
                                    "readinessProbe": _KSERVE_PROBE,
                                },
                                "required": ["name", "image", "args"],
                            },
                        },
                    },
                    ["containers"],
                )
            },
            ["predictor"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)


def _check_inference_service(manifest: dict[str, Any]) -> dict[str, Any]:
    """Check the CRD's structure, and its container against Kubernetes' Container schema."""
    jsonschema.validate(manifest, INFERENCE_SERVICE)
    container = copy.deepcopy(manifest["spec"]["predictor"]["containers"][0])
    for probe in ("livenessProbe", "readinessProbe"):
        # Knative probes the one serving port itself; a plain Pod must name it.
        container[probe]["httpGet"]["port"] = 8080
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "check"},
        "spec": {"containers": [container]},
    }
    _validate(pod)
    result: dict[str, Any] = manifest["spec"]["predictor"]
    return result


def test_kserve_has_a_stable_and_a_canary_revision_and_names_what_it_drops(
    endpoint: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "churn.yaml"
    result = export(ENDPOINT, format="kserve", output=out, namespace="ml", workspace=endpoint)
    stable, canary = result.manifests
    assert result.paths == [out, tmp_path / "churn.2.yaml"]
    assert list(yaml.safe_load_all(out.read_text())) == [stable]
    assert list(yaml.safe_load_all((tmp_path / "churn.2.yaml").read_text())) == [canary]

    name = k8s_name(ENDPOINT, limit=KSERVE_NAME_LIMIT)
    assert stable["metadata"]["name"] == canary["metadata"]["name"] == name
    first, second = _check_inference_service(stable), _check_inference_service(canary)
    assert "canaryTrafficPercent" not in first and second["canaryTrafficPercent"] == 20
    assert first["containers"][0]["args"] == [
        "deployments", "serve", ENDPOINT, "blue", "--host", "0.0.0.0", "--port", "8080"
    ]  # fmt: skip
    assert second["containers"][0]["args"][3] == "Green.2"
    assert first["timeout"] == 30

    # Mirror and the router's checks are not expressible, and each is said, not dropped.
    text = "\n".join(result.warnings)
    assert "mirror: 'shadow' gets a 50% shadow copy" in text
    assert "statistics" in text
    assert "collect settings of 'Green.2' record nothing" in text
    assert "apply in steps" in text and str(tmp_path / "churn.2.yaml") in text
    assert "kubectl wait --for=condition=Ready inferenceservice/" + name in text
    assert "'shadow'" in stable["metadata"]["annotations"]["cauce.dev/not-expressed"]

    # A folder keeps the second step where `kubectl apply -f FOLDER` does not read it.
    folder = export(ENDPOINT, format="kserve", output=tmp_path / "isvc", workspace=endpoint)
    assert folder.paths == [
        tmp_path / "isvc" / f"inferenceservice-{name}.yaml",
        tmp_path / "isvc" / "2" / f"inferenceservice-{name}.yaml",
    ]


def test_kserve_warns_about_a_third_deployment_and_refuses_no_traffic(
    endpoint: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    set_traffic(ENDPOINT, {"blue": 50, "Green.2": 30, "shadow": 20}, mirror={}, workspace=endpoint)
    with caplog.at_level("WARNING", logger="cauce.serving.export"):
        manifests = export_kserve(ENDPOINT, workspace=endpoint)
    assert len(manifests) == 2
    for manifest in manifests:
        _check_inference_service(manifest)
    assert manifests[1]["spec"]["predictor"]["canaryTrafficPercent"] == 30
    assert "deployment 'shadow' takes 20% of live traffic" in caplog.text
    assert "two revisions only" in caplog.text

    set_traffic(ENDPOINT, {"blue": 100, "Green.2": 0, "shadow": 0}, workspace=endpoint)
    single = export(ENDPOINT, format="kserve", workspace=endpoint)
    assert len(single.manifests) == 1
    assert "canaryTrafficPercent" not in single.manifests[0]["spec"]["predictor"]
    assert any("'Green.2' takes no live traffic" in w for w in single.warnings)

    set_traffic(ENDPOINT, {"blue": 0, "Green.2": 0, "shadow": 0}, workspace=endpoint)
    with pytest.raises(InvalidInput, match="takes no live traffic"):
        export_kserve(ENDPOINT, workspace=endpoint)


# -- names --------------------------------------------------------------------------------------


def _cauce_name(value: str) -> bool:
    try:
        check_name(value)
    except InvalidInput:
        return False
    return True


cauce_names = st.from_regex(r"[\w][\w\-. ]{0,254}", fullmatch=True).filter(_cauce_name)


def test_names_that_are_already_valid_stay_readable() -> None:
    assert k8s_name("churn") == "churn"
    assert k8s_name("churn", "blue") == "churn--blue"
    sanitised = k8s_name("Churn_v2.blue")
    assert re.fullmatch(r"churn-v2-blue-[0-9a-f]{8}", sanitised)
    assert k8s_name("Churn_v2.blue") != k8s_name("churn-v2-blue")
    assert k8s_name("2024").startswith("c-2024-")


@given(st.lists(cauce_names, min_size=1, max_size=8, unique=True))
def test_any_cauce_name_becomes_a_distinct_dns_label(names: list[str]) -> None:
    labels = [k8s_name(name) for name in names]
    for label in labels:
        assert len(label) <= 63 and DNS_1035.match(label) and DNS_1123.match(label)
    assert len(set(labels)) == len(names)


@given(st.lists(st.tuples(cauce_names, cauce_names), min_size=1, max_size=6, unique=True))
def test_endpoint_and_deployment_pairs_stay_distinct(pairs: list[tuple[str, str]]) -> None:
    routers = {k8s_name(endpoint) for endpoint, _ in pairs}
    deployments = [k8s_name(endpoint, name) for endpoint, name in pairs]
    kserve = k8s_name(pairs[0][0], limit=KSERVE_NAME_LIMIT)
    assert len(kserve) <= KSERVE_NAME_LIMIT and DNS_1035.match(kserve)
    for label in deployments:
        assert len(label) <= 63 and DNS_1035.match(label)
    assert len(set(deployments)) == len(pairs)
    assert not routers & set(deployments)


def test_every_export_format_is_a_target_registered_by_name() -> None:
    from cauce.config import load_object
    from cauce.serving.export import TARGETS
    from cauce.serving.targets.base import Target

    assert [name for name, _ in TARGETS] == ["kubernetes", "kserve"]
    for name, where in TARGETS:
        target = load_object(where, what="export target")
        assert issubclass(target, Target) and target.name == name

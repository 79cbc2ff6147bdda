"""deploy/kubernetes holds together: it parses, kinds and API versions are current, selectors
match the pods, probes call real endpoints on the real port, termination outlasts the drain,
the HPA scales the Deployment on metrics the adapter rules produce, and every setting is one
the service reads and accepts.

Every manifest is validated against Kubernetes' own JSON schemas (`kubernetes-validate`,
strict: an unknown or misplaced field is an error); the other tests check what a schema
cannot. No cluster here: nothing was applied to a real Kubernetes, and no image was built
(deploy/Dockerfile is checked against the manifests, not run).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT
from zenml_serving.api.ops import health, info, livez, status
from zenml_serving.api.security import EXCLUDE_FROM_AUTH
from zenml_serving.config import ServingConfig

KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
API_VERSIONS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
# The names the service exports on /metrics (telemetry, Prometheus) that the autoscaling uses.
EXPORTED_GAUGES = {
    "zenml_serving_queue_depth",
    "zenml_serving_executions_in_flight",
    "zenml_serving_concurrency_limit",
}
SERVED_PATHS = {p for h in (health, info, livez, status) for p in h.paths} | {"/metrics"}
GRANIAN_KILL_MARGIN_S = 5  # cli.run_granian: workers_kill_timeout = shutdown grace + 5


def documents() -> dict[str, dict[str, Any]]:
    """Every manifest by kind (one of each here)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert isinstance(document, dict), path
            key = document["kind"]
            if key == "ConfigMap" and path.name.startswith("prometheus-adapter"):
                key = "AdapterRules"
            assert key not in found, f"two {key} manifests"
            found[key] = {**document, "_file": path.name}
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return documents()


@pytest.fixture(scope="module")
def pod(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(manifests["Deployment"]["spec"]["template"])


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    containers = pod["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(manifests: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {**manifests["ConfigMap"]["data"], **manifests["Secret"]["stringData"]}


# The oldest minor the manifests promise, and the newest the validator ships.
KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


class TestKubernetesSchemas:
    """Each resource is valid for current Kubernetes, strictly (kustomize's own file has no
    Kubernetes schema: TestShape checks it)."""

    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_every_resource_passes_strict_validation(
        self, manifests: dict[str, dict[str, Any]], version: str
    ) -> None:
        for kind, document in manifests.items():
            if kind == "Kustomization":
                continue
            resource = {k: v for k, v in document.items() if k != "_file"}
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{document['_file']} ({kind}) is invalid for {version}: {exc}")

    def test_a_misplaced_field_is_caught(self, manifests: dict[str, dict[str, Any]]) -> None:
        """The validation has teeth: a probe field one level too high is refused."""
        broken = {k: v for k, v in manifests["Deployment"].items() if k != "_file"}
        broken = yaml.safe_load(yaml.safe_dump(broken))
        container = broken["spec"]["template"]["spec"]["containers"][0]
        container["periodSeconds"] = 5
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO_ROOT / "deploy" / "Dockerfile").read_text()


class TestImage:
    """deploy/Dockerfile agrees with the Deployment: user, port, command, source root."""

    def test_slim_base_installed_from_the_lock(self, dockerfile: str) -> None:
        assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim\b", dockerfile, re.M)
        assert "pip install -c requirements/dev.lock ." in dockerfile

    def test_runs_as_the_deployments_non_root_user(
        self, dockerfile: str, pod: dict[str, Any]
    ) -> None:
        context = pod["spec"]["securityContext"]
        user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
        assert user == [(str(context["runAsUser"]), str(context["runAsGroup"]))]

    def test_port_and_command_match_the_container(
        self, dockerfile: str, container: dict[str, Any]
    ) -> None:
        port = container["ports"][0]["containerPort"]
        assert f"EXPOSE {port}" in dockerfile
        assert f"ZENML_SERVICE_PORT={port}" in dockerfile
        command = re.search(r"^CMD (.+)$", dockerfile, re.M)
        assert command is not None
        assert yaml.safe_load(command.group(1)) == container["command"]

    def test_zenml_config_lives_on_a_writable_volume(
        self, dockerfile: str, container: dict[str, Any]
    ) -> None:
        path = Path(re.findall(r"ZENML_CONFIG_PATH=(\S+)", dockerfile)[0])
        mounts = [Path(m["mountPath"]) for m in container["volumeMounts"]]
        assert any(path.is_relative_to(m) for m in mounts)


class TestShape:
    """Every file parses; kinds and API versions are the current stable ones."""

    def test_kinds_and_api_versions(self, manifests: dict[str, dict[str, Any]]) -> None:
        kinds = {m["kind"] for m in manifests.values()}
        assert kinds == set(API_VERSIONS)
        for manifest in manifests.values():
            assert manifest["apiVersion"] == API_VERSIONS[manifest["kind"]], manifest["_file"]
            if manifest["kind"] != "Kustomization":
                assert manifest["metadata"]["name"].startswith("zenml-serving")

    def test_the_kustomization_lists_every_application_manifest(
        self, manifests: dict[str, dict[str, Any]]
    ) -> None:
        listed = set(manifests["Kustomization"]["resources"])
        application = {
            m["_file"] for k, m in manifests.items() if k not in ("Kustomization", "AdapterRules")
        }
        assert listed == application
        assert all((KUBERNETES / name).is_file() for name in listed)


class TestSelectors:
    """The Deployment, Service and PodDisruptionBudget all select the Deployment's pods."""

    def test_selectors_match_the_pod_labels(
        self, manifests: dict[str, dict[str, Any]], pod: dict[str, Any]
    ) -> None:
        labels = pod["metadata"]["labels"]
        selectors = {
            "Deployment": manifests["Deployment"]["spec"]["selector"]["matchLabels"],
            "PodDisruptionBudget": manifests["PodDisruptionBudget"]["spec"]["selector"][
                "matchLabels"
            ],
            "Service": manifests["Service"]["spec"]["selector"],
        }
        for kind, selector in selectors.items():
            assert selector, kind
            assert selector.items() <= labels.items(), kind

    def test_the_service_targets_the_container_port(
        self, manifests: dict[str, dict[str, Any]], container: dict[str, Any]
    ) -> None:
        port_names = {p["name"] for p in container["ports"]}
        for port in manifests["Service"]["spec"]["ports"]:
            assert port["targetPort"] in port_names

    def test_the_disruption_budget_leaves_pods_serving(
        self, manifests: dict[str, dict[str, Any]]
    ) -> None:
        budget = manifests["PodDisruptionBudget"]["spec"]
        replicas = manifests["Deployment"]["spec"]["replicas"]
        minimum = manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"]
        assert budget.get("maxUnavailable", 0) < min(replicas, minimum)


class TestProbesAndTermination:
    """Probes call served endpoints on the serving port; termination outlasts the drain."""

    def test_probes_use_real_endpoints_and_the_serving_port(
        self, manifests: dict[str, dict[str, Any]], container: dict[str, Any]
    ) -> None:
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == int(env_of(manifests)["ZENML_SERVICE_PORT"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            http = container[probe]["httpGet"]
            assert http["path"] in SERVED_PATHS, probe
            assert http["port"] in ports, probe

    def test_probes_stay_open_when_an_auth_key_is_set(self, container: dict[str, Any]) -> None:
        """A kubelet has no key: every probed route must be excluded from auth."""
        handlers = {p: h for h in (health, info, livez, status) for p in h.paths}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert handlers[path].opt.get(EXCLUDE_FROM_AUTH) is True, probe
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"

    def test_termination_grace_exceeds_prestop_plus_drain(
        self, manifests: dict[str, dict[str, Any]], pod: dict[str, Any], container: dict[str, Any]
    ) -> None:
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pre_stop_s = float(command[1])
        grace_s = ServingConfig.from_env(env_of(manifests)).shutdown_grace_s
        drain_s = pre_stop_s + grace_s + GRANIAN_KILL_MARGIN_S
        assert pod["spec"]["terminationGracePeriodSeconds"] >= drain_s + 5

    def test_liveness_never_restarts_a_draining_pod(
        self, pod: dict[str, Any], container: dict[str, Any]
    ) -> None:
        """Even if a drain makes the loop lag, liveness must tolerate the whole termination."""
        liveness = container["livenessProbe"]
        window_s = liveness["periodSeconds"] * liveness["failureThreshold"]
        assert window_s > pod["spec"]["terminationGracePeriodSeconds"]

    def test_rolling_updates_keep_capacity(self, manifests: dict[str, dict[str, Any]]) -> None:
        rolling = manifests["Deployment"]["spec"]["strategy"]["rollingUpdate"]
        assert rolling["maxUnavailable"] == 0


class TestSettings:
    """Every setting is read by the service and valid; the shared backends are configured."""

    def test_the_environment_is_a_valid_configuration(
        self, manifests: dict[str, dict[str, Any]]
    ) -> None:
        config = ServingConfig.from_env(env_of(manifests))
        assert config.redis_url is not None, "several replicas need the Redis job backend"
        assert config.workers >= 1

    def test_every_serving_variable_is_one_the_service_reads(
        self, manifests: dict[str, dict[str, Any]]
    ) -> None:
        source = (REPO_ROOT / "src" / "zenml_serving" / "config.py").read_text()
        for name in env_of(manifests):
            if re.match(r"ZENML_(SERVING|SERVICE)_|ZENML_PIPELINE_|ZENML_LOG_LEVEL", name):
                assert f'"{name}"' in source, f"{name} is not read by ServingConfig"

    def test_the_zenml_store_is_shared(self, manifests: dict[str, dict[str, Any]]) -> None:
        assert env_of(manifests)["ZENML_STORE_URL"].startswith("mysql://")

    def test_writable_folders_are_volumes(
        self, manifests: dict[str, dict[str, Any]], container: dict[str, Any]
    ) -> None:
        mounts = [Path(m["mountPath"]) for m in container["volumeMounts"]]
        env = env_of(manifests)
        for variable in ("PROMETHEUS_MULTIPROC_DIR", "ZENML_CONFIG_PATH"):
            path = Path(env[variable])
            assert any(path.is_relative_to(m) for m in mounts), variable


class TestAutoscaling:
    """The HPA scales the Deployment on per-pod metrics that the adapter rules produce from
    gauges the service exports."""

    def test_the_hpa_targets_the_deployment(self, manifests: dict[str, dict[str, Any]]) -> None:
        spec = manifests["HorizontalPodAutoscaler"]["spec"]
        deployment = manifests["Deployment"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": deployment["apiVersion"],
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert spec["minReplicas"] <= deployment["spec"]["replicas"] <= spec["maxReplicas"]

    def test_hpa_metrics_come_from_exported_gauges(
        self, manifests: dict[str, dict[str, Any]]
    ) -> None:
        rules = yaml.safe_load(manifests["AdapterRules"]["data"]["rules.yaml"])["rules"]
        produced = {rule["name"]["as"] for rule in rules}
        used = {
            m["pods"]["metric"]["name"]
            for m in manifests["HorizontalPodAutoscaler"]["spec"]["metrics"]
        }
        assert used <= produced
        for rule in rules:
            queried = set(re.findall(r"zenml_serving_[a-z_]+", rule["metricsQuery"]))
            queried |= set(re.findall(r"zenml_serving_[a-z_]+", rule["seriesQuery"]))
            assert queried <= EXPORTED_GAUGES, queried - EXPORTED_GAUGES

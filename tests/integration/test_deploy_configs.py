"""What deploy/ hands the ops team is valid: NATS configs nats-server accepts, Kubernetes
manifests that pass their schemas, and only settings the services know.

There is no container engine on our machines, so the files are checked, not run.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as k8s

from services.console.settings import ConsoleSettings
from services.intake.settings import IntakeSettings
from services.meetings.settings import MeetingsSettings
from services.notifications.settings import NotificationsSettings
from services.projections.settings import ProjectionsSettings
from services.supervision.settings import SupervisionSettings
from shared.embedded import nats_server_binary
from shared.nats_access import USERS, password_variable
from shared.settings import Settings
from tools.cli import parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30"
NATS_ENV = {
    **{password_variable(user): "test-only" for user in USERS},
    # What compose and the cluster test give each node of deploy/nats/cluster/node.conf.
    "NATS_SERVER_NAME": "nats-1",
    "NATS_CLIENT_PORT": "4222",
    "NATS_CLUSTER_PORT": "6222",
    "NATS_MONITOR_PORT": "8222",
    "NATS_STORE_DIR": "/tmp/jetstream",
    # ... and what deploy/nats/leaf's hub and county configs need besides.
    "NATS_LEAF_PORT": "7422",
    "NATS_DOMAIN": "county-hunchun",
    "NATS_HUB_URL": "nats-leaf://county:test-only@nats-1:7422",
    **{f"NATS_ROUTE_{n}": f"nats-route://nats-{n}:6222" for n in (1, 2, 3)},
}


def known_settings() -> set[str]:
    """Every SHANGLIANG_* variable some service reads."""
    names = {f"SHANGLIANG_{field.upper()}" for field in Settings.model_fields}
    for service in (
        IntakeSettings,
        MeetingsSettings,
        SupervisionSettings,
        ProjectionsSettings,
        NotificationsSettings,
        ConsoleSettings,
    ):
        prefix = service.model_config["env_prefix"]
        names |= {f"{prefix}{field}".upper() for field in service.model_fields}
    return names


def nats_server_accepts(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **NATS_ENV, **env},
    )


def manifests() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    return [
        (name, document)
        for name in kustomization["resources"]
        for document in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text())
        if document
    ]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


@pytest.mark.parametrize("config", sorted(DEPLOY.glob("nats/**/*.conf")), ids=lambda p: p.name)
def test_nats_server_accepts_the_config(config: Path) -> None:
    result = nats_server_accepts(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kubernetes_nats_config_is_valid_and_has_the_same_users(tmp_path: Path) -> None:
    (config_map,) = [d for _, d in manifests() if d["metadata"]["name"] == "nats-config"]
    assert config_map["data"]["users.conf"] == (DEPLOY / "nats" / "users.conf").read_text()
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    result = nats_server_accepts(tmp_path / "nats.conf", POD_NAME="nats-0")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_manifest_passes_its_kubernetes_schema() -> None:
    checked = 0
    for _, document in manifests():
        k8s.validate(document, K8S_VERSION, strict=True)
        checked += 1
    assert checked >= 10, "the kustomization lists fewer manifests than deploy/k8s holds"


def test_the_schema_check_is_strict_about_unknown_fields() -> None:
    deployment = next(d for _, d in manifests() if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["replica"] = broken["spec"].pop("replicas")
    with pytest.raises(k8s.ValidationError):
        k8s.validate(broken, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_deployments_probe_readiness_and_liveness_and_run_as_non_root() -> None:
    deployments = [d for _, d in manifests() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "intake",
        "meetings",
        "supervision",
        "projections",
        "notifications",
        "console",
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_setting_deploy_sets_is_one_the_services_know() -> None:
    known = known_settings()
    set_by_deploy: set[str] = set()
    for _, document in manifests():
        if document["kind"] in ("ConfigMap", "Secret"):
            set_by_deploy |= set(document.get("data", {}) or {})
            set_by_deploy |= set(document.get("stringData", {}) or {})
        if document["kind"] == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                set_by_deploy |= {e["name"] for e in container.get("env", [])}
    for service in compose()["services"].values():
        set_by_deploy |= set(service.get("environment", {}) or {})
    set_by_deploy |= set(re.findall(r"^(\w+)=", (DEPLOY / ".env.example").read_text(), re.M))
    unknown = {n for n in set_by_deploy if n.startswith("SHANGLIANG_")} - known
    assert not unknown, f"deploy sets settings no service reads: {sorted(unknown)}"


def test_every_service_command_in_deploy_is_a_module_that_exists() -> None:
    commands = [s["command"] for s in compose()["services"].values() if "command" in s]
    for _, document in manifests():
        if document["kind"] == "Deployment":
            commands += [c["command"] for c in document["spec"]["template"]["spec"]["containers"]]
    modules = {c[2] for c in commands if c[:2] == ["python", "-m"]}
    assert modules == {
        f"services.{s}.main"
        for s in ("intake", "meetings", "supervision", "projections", "notifications", "console")
    }
    for module in modules:
        assert importlib.util.find_spec(module) is not None, module


def test_production_mode_gets_every_secret_it_refuses_to_start_without() -> None:
    intake = compose()["services"]["intake"]["environment"]
    assert intake["SHANGLIANG_MODE"] == "production"
    assert "SHANGLIANG_INTAKE_CIPHER_KEY" in intake
    (deployment,) = [
        d for _, d in manifests() if d["metadata"]["name"] == "intake" and d["kind"] == "Deployment"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "SHANGLIANG_INTAKE_CIPHER_KEY" in {e["name"] for e in container["env"]}


def test_compose_runs_three_nats_nodes_postgres_and_the_four_services() -> None:
    services = compose()["services"]
    assert {"nats-1", "nats-2", "nats-3", "postgres"} <= set(services)
    for node in ("nats-1", "nats-2", "nats-3"):
        config = services[node]["command"][-1].replace("/etc/nats/", "")
        assert (DEPLOY / "nats" / config).exists(), config
    for name in ("intake", "meetings", "supervision", "projections", "notifications"):
        env = services[name]["environment"]
        assert env["SHANGLIANG_STREAM_REPLICAS"] == "3"
        assert env["SHANGLIANG_EVENT_STORE"] == "postgres"
        assert env["SHANGLIANG_NATS_URL"].count("nats://") == 3


def test_the_admin_sets_nats_up_and_each_service_connects_as_its_own_user() -> None:
    services = compose()["services"]
    setup = services["nats-setup"]
    assert setup["environment"]["SHANGLIANG_NATS_USER"] == "admin"
    (job,) = [d for _, d in manifests() if d["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "SHANGLIANG_NATS_USER", "value": "admin"} in container["env"]
    for command in (setup["command"], container["command"]):
        assert command[0] == "shangliang"
        assert parser().parse_args(command[1:]).command == "nats-setup"

    deployments = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "Deployment"}
    for name in ("intake", "meetings", "supervision", "projections", "notifications"):
        env = services[name]["environment"]
        assert env["SHANGLIANG_NATS_USER"] == name
        assert f"NATS_{name.upper()}_PASSWORD" in env["SHANGLIANG_NATS_PASSWORD"]
        assert services[name]["depends_on"]["nats-setup"] == {
            "condition": "service_completed_successfully"
        }
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        variables = {e["name"]: e for e in container["env"]}
        assert variables["SHANGLIANG_NATS_USER"]["value"] == name
        secret = variables["SHANGLIANG_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
        assert secret == f"NATS_{name.upper()}_PASSWORD"


def test_every_long_running_container_is_restarted_when_it_dies() -> None:
    """As `shangliang up` restarts its children (deploy/README.md, Restarts)."""
    for name, service in compose()["services"].items():
        if name == "nats-setup":
            assert service["restart"] == "no", "a one-shot: the services wait for its success"
            continue
        assert service.get("restart") in ("always", "unless-stopped"), name
    for _, document in manifests():
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = document["spec"]["template"]["spec"]
        assert pod.get("restartPolicy", "Always") == "Always", document["metadata"]["name"]
        for container in pod["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, container["name"]

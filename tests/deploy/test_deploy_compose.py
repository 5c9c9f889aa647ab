"""docker-compose.yml and prometheus/prometheus.yml checked against each other, the collector config, the ledger
settings and the repository (no Docker engine runs here, so the stack is checked, not started)."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
PROMETHEUS_PATH = ROOT / "prometheus" / "prometheus.yml"
COLLECTOR_PATH = ROOT / "collector" / "config.yaml"
ALERTMANAGER_PATH = ROOT / "alerts" / "alertmanager.yml"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE_PATH)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return load(PROMETHEUS_PATH)


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    return load(COLLECTOR_PATH)


def port_of(endpoint: str) -> int:
    """`0.0.0.0:4317`, `http://ledger:4319`, `jaeger:4317` -> the port."""
    return int(endpoint.rsplit(":", 1)[1].split("/", 1)[0])


def host_of(endpoint: str) -> str:
    return urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""


def one_shot(services: dict[str, Any]) -> set[str]:
    """Services others wait for with service_completed_successfully: init steps, not long-running."""
    return {
        name
        for service in services.values()
        for name, dependency in (service.get("depends_on") or {}).items()
        if dependency.get("condition") == "service_completed_successfully"
    }


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each short-syntax volume."""
    return [tuple(volume.split(":")[:2]) for volume in service.get("volumes", [])]  # type: ignore[misc]


def command_option(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def scrape_targets(prometheus: dict[str, Any]) -> dict[str, list[str]]:
    return {
        job["job_name"]: [target for static in job["static_configs"] for target in static["targets"]]
        for job in prometheus["scrape_configs"]
    }


# --- the compose file on its own ---------------------------------------------------------------------------------


def test_expected_services(services: dict[str, Any]) -> None:
    expected = {"collector", "prometheus", "alertmanager", "grafana", "jaeger", "dynamodb", "ledger", "app"}
    expected |= {"ai-cost-alert-webhook"}
    assert expected <= set(services)
    assert "ledger-init" in one_shot(services)


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image (built images get a versioned tag too)"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"


def test_prometheus_and_alertmanager_match_the_debian_tools_ci_uses(services: dict[str, Any]) -> None:
    assert services["prometheus"]["image"] == "prom/prometheus:v2.42.0"
    assert services["alertmanager"]["image"] == "prom/alertmanager:v0.25.0"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    once = one_shot(services)
    for name, service in services.items():
        if name in once:
            assert service.get("restart") == "no", f"{name} runs once: it must not be restarted"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_probe_based_healthchecks_have_the_probe(services: dict[str, Any]) -> None:
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", [])
        if any("/probe/" in part for part in test):
            assert ("probe", "/probe") in mounts(service), f"{name}: uses /probe without mounting it"
            assert service["depends_on"]["init"]["condition"] == "service_completed_successfully", name


def test_depends_on_use_conditions(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in ("service_healthy", "service_completed_successfully"), f"{name}->{dependency}"
            if spec["condition"] == "service_healthy":
                assert services[dependency].get("healthcheck"), f"{dependency} has no healthcheck to wait for"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = {source for service in services.values() for source, _ in mounts(service) if not source.startswith(".")}
    assert used == declared


def test_every_bind_mount_and_build_input_exists(services: dict[str, Any]) -> None:
    """Includes the files other parts of the stack provide (alerts/, grafana/provisioning/, dashboards/)."""
    missing = []
    for name, service in services.items():
        for source, _ in mounts(service):
            if source.startswith(".") and not (ROOT / source).exists():
                missing.append(f"{name}: {source}")
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            if not (context / build["dockerfile"]).is_file():
                missing.append(f"{name}: {build['dockerfile']}")
    assert not missing, f"mounted or built from, but not in the repository: {missing}"


def test_rule_files_exist() -> None:
    """prometheus.yml loads alerts/*.rules.yml (mounted at /etc/prometheus/alerts)."""
    assert glob.glob(str(ROOT / "alerts" / "*.rules.yml")), "no alerts/*.rules.yml yet"


def test_dockerfile_inputs_exist_and_entrypoints_resolve() -> None:
    for dockerfile in ("deploy/ledger.Dockerfile", "deploy/app.Dockerfile"):
        text = (ROOT / dockerfile).read_text(encoding="utf-8")
        from_lines = re.findall(r"^FROM (\S+)", text, flags=re.M)
        assert from_lines and all(":" in image and not image.endswith(":latest") for image in from_lines)
        for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
            for source in line.split()[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} is missing"
    # The ledger image's ENTRYPOINT + CMD, and the init step, are real commands.
    for args in (["ledger", "serve", "--help"], ["ledger", "init", "--help"], ["budgets", "alert-log", "--help"]):
        result = subprocess.run([sys.executable, "-m", "otel_ai_cost", *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


# --- agreement between the configs -------------------------------------------------------------------------------


def test_collector_ports_and_mounts_agree(services: dict[str, Any], collector: dict[str, Any]) -> None:
    service = services["collector"]
    config_target = command_option_eq(service["command"], "--config")
    assert ("./collector/config.yaml", config_target) in mounts(service)
    published = {int(port.split(":")[-1]) for port in service["ports"]}
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert {port_of(protocols["grpc"]["endpoint"]), port_of(protocols["http"]["endpoint"])} <= published
    health_port = port_of(collector["extensions"]["health_check"]["endpoint"])
    assert f"127.0.0.1:{health_port}/" in " ".join(service["healthcheck"]["test"])
    # The persistent queue's directory is the named volume, and the token file is on the secrets volume.
    queue_dir = collector["extensions"]["file_storage/ledger_queue"]["directory"]
    assert ("collector-queue", queue_dir) in mounts(service)
    token_file = collector["extensions"]["bearertokenauth/ledger"]["filename"]
    assert ("ledger-secrets", str(Path(token_file).parent)) in mounts(service)
    # The init step prepares exactly that directory for the collector's uid.
    assert ("collector-queue", queue_dir) in mounts(services["init"])
    assert f"chown -R 10001:10001 {queue_dir}" in " ".join(services["init"]["command"])


def command_option_eq(command: list[str], option: str) -> str:
    """`--config=/x` -> `/x`."""
    for part in command:
        if part.startswith(f"{option}="):
            return part.split("=", 1)[1]
    raise AssertionError(f"{option} not in {command}")


def test_collector_exporters_point_at_compose_services(services: dict[str, Any], collector: dict[str, Any]) -> None:
    ledger_endpoint = collector["exporters"]["otlp_http/ledger"]["endpoint"]
    assert host_of(ledger_endpoint) == "ledger"
    ledger_command = services["ledger"]["command"]
    assert command_option(ledger_command, "--host") == "0.0.0.0"
    assert int(command_option(ledger_command, "--port")) == port_of(ledger_endpoint)
    jaeger_endpoint = collector["exporters"]["otlp_grpc/jaeger"]["endpoint"]
    assert host_of(jaeger_endpoint) == "jaeger" and port_of(jaeger_endpoint) == 4317  # Jaeger 2's OTLP gRPC port
    # Jaeger's 4317 stays inside the network: the collector publishes 4317 on the host.
    assert not any(port.endswith(":4317") for port in services["jaeger"].get("ports", []))


def test_ledger_token_is_the_same_file_everywhere(
    services: dict[str, Any], collector: dict[str, Any], prometheus: dict[str, Any]
) -> None:
    name = "ledger-token"
    token_file = Path(command_option(services["ledger"]["command"], "--token-file"))
    assert token_file.name == name and ("ledger-secrets", str(token_file.parent)) in mounts(services["ledger"])
    assert Path(collector["extensions"]["bearertokenauth/ledger"]["filename"]).name == name
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "ai-cost-ledger")
    credentials = Path(job["authorization"]["credentials_file"])  # relative to /etc/prometheus
    assert credentials.name == name
    assert ("ledger-secrets", str(Path("/etc/prometheus") / credentials.parent)) in mounts(services["prometheus"])
    assert ("ledger-secrets", "/secrets") in mounts(services["init"])
    assert f"/secrets/{name}" in " ".join(services["init"]["command"])


def test_ledger_store_is_the_dynamodb_service(services: dict[str, Any]) -> None:
    for name in ("ledger", "ledger-init"):
        url = services[name]["environment"]["OTEL_AI_COST_LEDGER"]
        parts = urlsplit(url)
        assert parts.scheme == "dynamodb" and parts.netloc, url
        query = parse_qs(parts.query)
        assert query["region"], url
        endpoint = query["endpoint_url"][0]
        assert host_of(endpoint) == "dynamodb"
        dynamodb_command = services["dynamodb"]["command"]
        assert port_of(endpoint) == int(command_option(dynamodb_command, "-port"))
        from otel_ai_cost.ledger.dynamodb_store import parse_url

        assert parse_url(url).endpoint_url == endpoint  # the ledger itself accepts the URL
    assert services["ledger-init"]["command"] == ["init"]
    assert services["ledger"]["depends_on"]["ledger-init"]["condition"] == "service_completed_successfully"


def test_prometheus_scrapes_compose_services(
    services: dict[str, Any], collector: dict[str, Any], prometheus: dict[str, Any]
) -> None:
    targets = scrape_targets(prometheus)
    exporter_port = port_of(collector["exporters"]["prometheus"]["endpoint"])
    assert targets["otel-collector"] == [f"collector:{exporter_port}"]
    internal = collector["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert internal["host"] == "0.0.0.0"
    assert targets["otel-collector-internal"] == [f"collector:{internal['port']}"]
    ledger_port = int(command_option(services["ledger"]["command"], "--port"))
    assert targets["ai-cost-ledger"] == [f"ledger:{ledger_port}"]
    for job, job_targets in targets.items():
        for target in job_targets:
            host = target.rsplit(":", 1)[0]
            assert host == "localhost" or host in services, f"{job}: {target} is not a compose service"
    collector_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "otel-collector")
    assert collector_job["honor_labels"] is True  # keep each producer's job/instance


def test_prometheus_alerting_rules_and_exemplars(services: dict[str, Any], prometheus: dict[str, Any]) -> None:
    service = services["prometheus"]
    assert "--enable-feature=exemplar-storage" in service["command"]
    assert ("./prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in mounts(service)
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    assert prometheus["rule_files"] == ["alerts/*.rules.yml"]
    assert ("./alerts", "/etc/prometheus/alerts") in mounts(service)  # rule_files resolve against /etc/prometheus
    alertmanagers = [
        t for am in prometheus["alerting"]["alertmanagers"] for s in am["static_configs"] for t in s["targets"]
    ]
    assert alertmanagers == ["alertmanager:9093"]
    assert ("./alerts/alertmanager.yml", "/etc/alertmanager/alertmanager.yml") in mounts(services["alertmanager"])
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in services["alertmanager"]["command"]


def webhook_urls(config: dict[str, Any]) -> dict[str, list[str]]:
    return {
        receiver["name"]: [webhook["url"] for webhook in receiver.get("webhook_configs", [])]
        for receiver in config["receivers"]
    }


def test_alertmanager_default_webhook_is_the_alert_log_service(services: dict[str, Any]) -> None:
    """alerts/alertmanager.yml's default-webhook URL names a compose service running `budgets alert-log` on its
    port, listening on all interfaces, health-checked on that port's /healthz."""
    urls = [url for url in webhook_urls(load(ALERTMANAGER_PATH))["default-webhook"] if "." not in host_of(url)]
    assert len(urls) == 1, f"default-webhook: expected one URL to a compose service, got {urls}"
    url = urlsplit(urls[0])
    assert url.scheme == "http" and url.path, urls[0]
    service = services.get(url.hostname or "")
    assert service, f"{urls[0]}: no compose service {url.hostname!r}"
    entrypoint = service["entrypoint"]
    assert entrypoint[:3] == ["otel-ai-cost", "budgets", "alert-log"], entrypoint
    assert "command" not in service, "the entrypoint holds the whole command (the image's CMD is the ledger's)"
    assert int(command_option(entrypoint, "--port")) == url.port
    assert command_option(entrypoint, "--host") == "0.0.0.0"
    assert f"http://127.0.0.1:{url.port}/healthz" in " ".join(service["healthcheck"]["test"])
    # Built from the ledger's image (it has the package), not published on the host.
    assert service["image"] == services["ledger"]["image"] and service["build"] == services["ledger"]["build"]
    assert not service.get("ports")


def test_alertmanager_webhooks_to_bare_host_names_are_compose_services(services: dict[str, Any]) -> None:
    """A host name without a dot can only be a service of this stack (real endpoints have a domain)."""
    for receiver, urls in webhook_urls(load(ALERTMANAGER_PATH)).items():
        for url in urls:
            host = host_of(url)
            assert "." in host or host in services, f"{receiver}: {url} is not a compose service"


def test_grafana_provisioning_mounts(services: dict[str, Any]) -> None:
    grafana_mounts = mounts(services["grafana"])
    assert ("./grafana/provisioning", "/etc/grafana/provisioning") in grafana_mounts
    assert ("./dashboards", "/var/lib/grafana/dashboards") in grafana_mounts


def test_grafana_provisioning_agrees_with_compose(services: dict[str, Any]) -> None:
    """The dashboard provider reads where compose mounts dashboards/; datasources use compose service URLs."""
    providers = sorted((ROOT / "grafana" / "provisioning" / "dashboards").glob("*.y*ml"))
    datasources = sorted((ROOT / "grafana" / "provisioning" / "datasources").glob("*.y*ml"))
    assert providers and datasources, "grafana/provisioning/{dashboards,datasources}/*.yaml do not exist yet"
    paths = {p["options"]["path"] for f in providers for p in load(f).get("providers", [])}
    assert paths and all(path.startswith("/var/lib/grafana/dashboards") for path in paths), paths
    urls = {d.get("url") for f in datasources for d in load(f).get("datasources", [])}
    assert "http://prometheus:9090" in urls and "http://jaeger:16686" in urls, urls


def test_app_exports_to_the_collector(services: dict[str, Any], collector: dict[str, Any]) -> None:
    env = services["app"]["environment"]
    http_port = port_of(collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://collector:{http_port}"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_AI_COST_LEDGER"] == "none"  # spans reach the ledger through the collector, once
    stand_in = services["stand-in"]
    port = int(command_option(stand_in["entrypoint"], "--port"))
    assert command_option(services["app"]["command"], "--stand-in") == f"http://stand-in:{port}"
    assert "--heartbeat-file" in services["app"]["command"]


# --- promtool -----------------------------------------------------------------------------------------------------


def test_promtool_check_config(tmp_path: Path) -> None:
    """Fails (never skips) without promtool: CI installs Debian's `prometheus` package."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (apt-get install -y prometheus)"
    # The layout of /etc/prometheus in the container: the config, alerts/ and the token file.
    shutil.copy(PROMETHEUS_PATH, tmp_path / "prometheus.yml")
    (tmp_path / "alerts").mkdir()
    for rules in glob.glob(str(ROOT / "alerts" / "*.rules.yml")):
        shutil.copy(rules, tmp_path / "alerts")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ledger-token").write_text("test-token", encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr

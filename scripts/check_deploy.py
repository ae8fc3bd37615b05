#!/usr/bin/env python3
"""Checks on mend's deployment files that schemas cannot express.

scripts/check-deploy.sh renders the Kubernetes overlays, validates them against the
Kubernetes and Compose schemas, then runs this for what a schema cannot see: security
settings every pod must carry, probes that match the ports, grace periods longer than the
services' own, references between objects, and MEND_* variables that mend really reads.

    check_deploy.py --repo . --overlay dev=/tmp/dev.yaml --overlay prod=/tmp/prod.yaml

Prints one line per problem, naming the file or object; exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

# What each overlay must look like beyond what the base gives every overlay.
OVERLAYS = {
    "dev": {"nats_replicas": 1, "external_secrets": set(), "placeholders_allowed": True},
    # prod deletes the placeholder Secret: the real one is created out of band.
    "prod": {"nats_replicas": 3, "external_secrets": {"mend-secrets"}, "placeholders_allowed": False},
}
# The Deployments every overlay runs, with their Dockerfile targets.
SERVICES = {
    "mend-server": "server",
    "mend-registry": "registry",
    "mend-ingest": "ingest",
    "mend-monitor": "monitor",
    "mend-trainer": "trainer",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
# Variables services read that are not mend's own.
FOREIGN_VARS = {"GOMEMLIMIT", "POD_NAME", "NATS_TOKEN"}
MEND_VAR_CONST = re.compile(r'pub const \w+: &str = "((?:MEND|OTEL)_[A-Z0-9_]+)"')
# A complete `MEND_*` name in a string literal (not a bare `"MEND_"` prefix).
MEND_STRING = re.compile(r'"(MEND_[A-Z0-9_]*[A-Z0-9])"')
# JetStream stream names, which look like variables but are not.
STREAM_CONST = re.compile(r'const \w+_STREAM: &str = "(MEND_[A-Z0-9_]+)"')
# A floating action ref (a branch) instead of a version or a commit.
ACTION_REF = re.compile(r"^\s*-?\s*uses:\s*([^\s#]+)", re.MULTILINE)


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        # The overlay being checked, so a problem in the base says where it showed.
        self.context = ""

    def add(self, where: str, what: str) -> None:
        prefix = f"[{self.context}] " if self.context else ""
        self.lines.append(f"{prefix}{where}: {what}")


def known_variables(repo: Path) -> set[str]:
    """Every MEND_*/OTEL_* name declared as a constant anywhere in the crates."""
    names: set[str] = set()
    for path in (repo / "crates").glob("*/src/**/*.rs"):
        names.update(MEND_VAR_CONST.findall(path.read_text(encoding="utf-8")))
    return names


def runtime_variables(repo: Path) -> list[str]:
    """The shared runtime's variables (crates/runtime/src/config/vars.rs), in order."""
    text = (repo / "crates/runtime/src/config/vars.rs").read_text(encoding="utf-8")
    return MEND_VAR_CONST.findall(text)


def dockerfile_targets(repo: Path) -> set[str]:
    text = (repo / "deploy/Dockerfile").read_text(encoding="utf-8")
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE | re.IGNORECASE))


def load_all(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def name_of(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def selects(selector: dict | None, labels: dict) -> bool:
    """Whether a label selector (matchLabels / matchExpressions) selects these labels."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        operator = expr["operator"]
        if operator == "In" and value not in expr.get("values", []):
            return False
        if operator == "NotIn" and value in expr.get("values", []):
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def grace_ms(objects: list[dict]) -> int:
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("mend-config"):
            return int(obj["data"].get("MEND_SHUTDOWN_GRACE_MS", "25000"))
    return 25000


def check_container(where: str, container: dict, variables: set[str], p: Problems) -> None:
    security = container.get("securityContext") or {}
    if security.get("allowPrivilegeEscalation") is not False:
        p.add(where, "allowPrivilegeEscalation must be false")
    if security.get("readOnlyRootFilesystem") is not True:
        p.add(where, "readOnlyRootFilesystem must be true")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        p.add(where, "capabilities must drop ALL")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(part) or {}):
                p.add(where, f"resources.{part}.{resource} is missing")
    for probe in ("readinessProbe", "livenessProbe"):
        if probe not in container:
            p.add(where, f"{probe} is missing")
    image = container.get("image", "")
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        p.add(where, f"image {image!r} has no fixed tag")

    ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
    if "grpc" in ports:
        # Native gRPC probes on the gRPC port, readiness naming the service it serves.
        readiness = (container.get("readinessProbe") or {}).get("grpc")
        liveness = (container.get("livenessProbe") or {}).get("grpc")
        if not readiness or readiness.get("port") != ports["grpc"] or not readiness.get("service"):
            p.add(where, "readinessProbe must be grpc on the grpc port with a service name")
        if not liveness or liveness.get("port") != ports["grpc"]:
            p.add(where, "livenessProbe must be grpc on the grpc port")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        http_port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
        if isinstance(http_port, str) and http_port not in ports:
            p.add(where, f"{probe} uses port {http_port!r}, which the container does not name")

    for env in container.get("env", []):
        name = env["name"]
        if name not in variables and name not in FOREIGN_VARS:
            p.add(where, f"sets {name}, which no crate declares (typo?)")


def check_workload(obj: dict, objects: list[dict], variables: set[str], p: Problems) -> None:
    where = name_of(obj)
    pod = obj["spec"]["template"]["spec"]
    security = pod.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        p.add(where, "runAsNonRoot must be true")
    if not security.get("runAsUser"):
        p.add(where, "runAsUser must be a non-zero uid (runAsNonRoot checks it without /etc/passwd)")
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.add(where, "seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        p.add(where, "automountServiceAccountToken must be false (mend needs no API access)")

    grace_s = pod.get("terminationGracePeriodSeconds", 30)
    volumes = {volume["name"] for volume in pod.get("volumes", [])}
    volumes |= {vct["metadata"]["name"] for vct in obj["spec"].get("volumeClaimTemplates", [])}
    for container in pod["containers"]:
        cwhere = f"{where} container {container['name']}"
        check_container(cwhere, container, variables, p)
        pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep")
        pre_stop_s = pre_stop["seconds"] if pre_stop else 0
        if obj["metadata"]["name"] in SERVICES and grace_s * 1000 <= grace_ms(objects) + pre_stop_s * 1000:
            p.add(
                where,
                f"terminationGracePeriodSeconds {grace_s} must exceed the preStop sleep "
                f"({pre_stop_s} s) plus MEND_SHUTDOWN_GRACE_MS ({grace_ms(objects)} ms)",
            )
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                p.add(cwhere, f"mounts volume {mount['name']!r}, which the pod does not define")


def check_references(objects: list[dict], external_secrets: set[str], p: Problems) -> None:
    """ConfigMaps, Secrets, PVCs and ServiceAccounts that pods name must be rendered too."""
    present = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    for obj in objects:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        pod = obj["spec"]["template"]["spec"]
        wanted: list[tuple[str, str]] = []
        if "serviceAccountName" in pod:
            wanted.append(("ServiceAccount", pod["serviceAccountName"]))
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                wanted.append(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                wanted.append(("Secret", volume["secret"]["secretName"]))
            if "persistentVolumeClaim" in volume:
                wanted.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    wanted.append(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    wanted.append(("Secret", source["secretRef"]["name"]))
            for env in container.get("env", []):
                ref = env.get("valueFrom") or {}
                if "configMapKeyRef" in ref:
                    wanted.append(("ConfigMap", ref["configMapKeyRef"]["name"]))
                if "secretKeyRef" in ref:
                    wanted.append(("Secret", ref["secretKeyRef"]["name"]))
        for kind, name in wanted:
            if (kind, name) in present:
                continue
            if kind == "Secret" and name in external_secrets:
                continue
            p.add(name_of(obj), f"refers to {kind}/{name}, which is not rendered")


def check_overlay(overlay: str, path: Path, repo: Path, variables: set[str], p: Problems) -> None:
    expect = OVERLAYS[overlay]
    objects = load_all(path)
    where = f"overlay {overlay}"
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    workloads = [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS]

    names = {obj["metadata"]["name"] for obj in by_kind.get("Deployment", [])}
    for service in SERVICES:
        if service not in names:
            p.add(where, f"has no Deployment {service}")
    targets = dockerfile_targets(repo)
    for service, target in SERVICES.items():
        if target not in targets:
            p.add("deploy/Dockerfile", f"has no target {target!r} for {service}")

    for obj in workloads:
        check_workload(obj, objects, variables, p)
    for config in by_kind.get("ConfigMap", []):
        if config["metadata"]["name"].startswith("mend-config"):
            for var in config.get("data", {}):
                if var not in variables:
                    p.add(name_of(config), f"sets {var}, which no crate declares (typo?)")
    check_references(objects, expect["external_secrets"], p)

    # Every pod is covered by a default deny, an ingress policy of its own, and a PDB.
    policies = by_kind.get("NetworkPolicy", [])
    if not any(
        pol["spec"]["podSelector"] == {} and set(pol["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not pol["spec"].get("ingress") and not pol["spec"].get("egress")
        for pol in policies
    ):
        p.add(where, "has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress)")
    for obj in workloads:
        labels = obj["spec"]["template"]["metadata"]["labels"]
        own = [
            pol for pol in policies
            if pol["spec"]["podSelector"] != {} and selects(pol["spec"]["podSelector"], labels)
            and "Ingress" in pol["spec"].get("policyTypes", [])
        ]
        if not own:
            p.add(name_of(obj), "no NetworkPolicy states which ingress it accepts")
        if not any(selects(pdb["spec"]["selector"], labels) for pdb in by_kind.get("PodDisruptionBudget", [])):
            p.add(name_of(obj), "no PodDisruptionBudget selects it")

    # Services select a workload and name ports its containers have.
    for svc in by_kind.get("Service", []):
        selector = svc["spec"].get("selector") or {}
        matched = [
            obj for obj in workloads
            if selects({"matchLabels": selector}, obj["spec"]["template"]["metadata"]["labels"])
        ]
        if not matched:
            p.add(name_of(svc), "selects no workload")
            continue
        port_names = {
            port.get("name")
            for obj in matched
            for container in obj["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in port_names:
                p.add(name_of(svc), f"targetPort {target!r} is not a container port name")

    # The server scales with an HPA, which owns its replica count.
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    server = [obj for obj in by_kind.get("Deployment", []) if obj["metadata"]["name"] == "mend-server"]
    if not any(hpa["spec"]["scaleTargetRef"]["name"] == "mend-server" for hpa in hpas):
        p.add(where, "has no HorizontalPodAutoscaler for mend-server")
    if server and "replicas" in server[0]["spec"]:
        p.add("Deployment/mend-server", "sets replicas, which its HPA owns (every apply would reset it)")

    # NATS: the expected node count, and a route to every node when clustered.
    nats = [obj for obj in by_kind.get("StatefulSet", []) if obj["metadata"]["name"] == "nats"]
    if not nats:
        p.add(where, "has no StatefulSet nats")
    else:
        replicas = nats[0]["spec"].get("replicas", 1)
        if replicas != expect["nats_replicas"]:
            p.add("StatefulSet/nats", f"has {replicas} replicas; overlay {overlay} wants {expect['nats_replicas']}")
        config = next(
            (obj for obj in by_kind.get("ConfigMap", []) if obj["metadata"]["name"].startswith("nats-config")),
            None,
        )
        text = (config or {}).get("data", {}).get("nats.conf", "")
        if "jetstream" not in text:
            p.add("ConfigMap/nats-config", "does not enable JetStream")
        if replicas > 1:
            for index in range(replicas):
                if f"nats-{index}.nats-headless:6222" not in text:
                    p.add("ConfigMap/nats-config", f"has no cluster route to nats-{index}")
        # Streams and buckets get MEND_NATS_REPLICAS copies: more than there are nodes fails
        # at start-up, fewer than a cluster has loses data with a node.
        mend_config = next(
            (obj for obj in by_kind.get("ConfigMap", []) if obj["metadata"]["name"].startswith("mend-config")),
            None,
        )
        stream_replicas = str((mend_config or {}).get("data", {}).get("MEND_NATS_REPLICAS", "1"))
        if stream_replicas != str(replicas):
            p.add("ConfigMap/mend-config",
                  f"MEND_NATS_REPLICAS is {stream_replicas} but NATS runs {replicas} node(s); make them equal")

    if not expect["placeholders_allowed"]:
        for secret in by_kind.get("Secret", []):
            values = {**(secret.get("stringData") or {}), **(secret.get("data") or {})}
            if any("PLACEHOLDER" in str(value) for value in values.values()):
                p.add(name_of(secret), f"carries placeholder values in overlay {overlay}")


def check_compose(repo: Path, variables: set[str], p: Problems) -> None:
    path = repo / "deploy/compose.yaml"
    where = "deploy/compose.yaml"
    compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = compose.get("services", {})
    volumes = set((compose.get("volumes") or {}).keys())
    targets = dockerfile_targets(repo)
    for name, service in services.items():
        swhere = f"{where} service {name}"
        depends = service.get("depends_on") or []
        for dependency in depends if isinstance(depends, list) else depends.keys():
            if dependency not in services:
                p.add(swhere, f"depends on {dependency!r}, which is not a service")
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith("."):
                if not (path.parent / source).exists():
                    p.add(swhere, f"mounts {source}, which does not exist")
            elif source and source not in volumes:
                p.add(swhere, f"uses volume {source!r}, which is not declared")
        build = service.get("build")
        if isinstance(build, dict):
            if build.get("target") not in targets:
                p.add(swhere, f"builds target {build.get('target')!r}, which deploy/Dockerfile lacks")
            if not service.get("read_only") or "ALL" not in (service.get("cap_drop") or []):
                p.add(swhere, "a mend service must run read_only with cap_drop [ALL]")
        environment = service.get("environment") or {}
        names = environment.keys() if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]
        for var in names:
            if var.startswith(("MEND_", "OTEL_")) and var not in variables:
                p.add(swhere, f"sets {var}, which no crate declares (typo?)")

    prometheus = yaml.safe_load((repo / "deploy/prometheus.yml").read_text(encoding="utf-8"))
    for job in prometheus.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host = target.rsplit(":", 1)[0]
                if host != "localhost" and host not in services:
                    p.add("deploy/prometheus.yml", f"scrapes {target}, which is not a compose service")


def check_workflows(repo: Path, p: Problems) -> None:
    targets = dockerfile_targets(repo)
    for path in sorted((repo / ".github/workflows").glob("*.y*ml")):
        where = str(path.relative_to(repo))
        text = path.read_text(encoding="utf-8")
        for ref in ACTION_REF.findall(text):
            if ref.startswith(("./", "docker://")):
                continue
            version = ref.partition("@")[2]
            if not re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", version):
                p.add(where, f"uses {ref}: pin actions to a version (at least @vN) or a commit")
        for target in re.findall(r"\btarget:\s*([a-z]+)\b", text):
            if target not in targets:
                p.add(where, f"builds target {target!r}, which deploy/Dockerfile lacks")
        for script in re.findall(r"\./(scripts/[\w./-]+)", text):
            if not (repo / script).exists():
                p.add(where, f"runs {script}, which does not exist")


def read_variables(repo: Path) -> dict[str, str]:
    """Every `"MEND_…"` string literal in crates/*/src outside test code and comments, with
    the first file that holds it: the names some service or tool reads, so the README
    cannot go stale.

    Test code (files named tests.rs, and everything after a `#[cfg(test)]` line, where the
    style puts test modules), comments and JetStream stream names (`…_STREAM` constants)
    are not variables."""
    streams: set[str] = set()
    found: dict[str, str] = {}
    for path in sorted((repo / "crates").glob("*/src/**/*.rs")):
        if path.name == "tests.rs" or "tests" in path.relative_to(repo / "crates").parts[2:-1]:
            continue
        text = path.read_text(encoding="utf-8").split("#[cfg(test)]", 1)[0]
        # Examples in comments are not reads.
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        streams.update(STREAM_CONST.findall(text))
        for name in MEND_STRING.findall(text):
            found.setdefault(name, str(path.relative_to(repo)))
    return {name: where for name, where in found.items() if name not in streams}


def check_readme(repo: Path, p: Problems) -> None:
    """The README's configuration reference names every variable mend reads."""
    text = (repo / "README.md").read_text(encoding="utf-8")
    deploy = text.split("\n## Deploy", 1)
    if len(deploy) < 2:
        p.add("README.md", "has no '## Deploy' section")
        return
    reference = deploy[1].split("\n### Configuration reference", 1)
    if len(reference) < 2:
        p.add("README.md", "the Deploy section has no '### Configuration reference'")
        return
    section = reference[1].split("\n### ", 1)[0]
    shared = runtime_variables(repo)
    for var in shared:
        if f"| `{var}` |" not in section:
            p.add("README.md", f"the configuration reference does not list `{var}`")
    for var, where in sorted(read_variables(repo).items()):
        if var not in shared and f"| `{var}` |" not in section:
            p.add("README.md", f"the configuration reference does not list `{var}` (read in {where})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--overlay", action="append", default=[], help="NAME=RENDERED.yaml")
    args = parser.parse_args()

    problems = Problems()
    variables = known_variables(args.repo)
    for item in args.overlay:
        overlay, _, path = item.partition("=")
        if overlay not in OVERLAYS:
            parser.error(f"unknown overlay {overlay!r}; expected one of {sorted(OVERLAYS)}")
        problems.context = overlay
        check_overlay(overlay, Path(path), args.repo, variables, problems)
    problems.context = ""
    check_compose(args.repo, variables, problems)
    check_workflows(args.repo, problems)
    check_readme(args.repo, problems)

    for line in problems.lines:
        print(f"  {line}")
    if problems.lines:
        print(f"{len(problems.lines)} problem(s) in the deployment files")
        return 1
    print(f"ok -- policies hold for overlays {', '.join(o.partition('=')[0] for o in args.overlay)}, "
          "compose, workflows, README")
    return 0


if __name__ == "__main__":
    sys.exit(main())

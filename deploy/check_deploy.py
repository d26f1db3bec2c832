#!/usr/bin/env python3
"""Consistency checks for deploy/: cheap enough to run in every test run.

- Every YAML and JSON file in deploy/ parses.
- Every metric a dashboard query, alert rule or alert test names exists in the series list of
  server/metrics.h (its header comment), with labels that series has; so a renamed metric or
  label breaks the build instead of silently emptying a panel.
- The dashboard covers the signals operators need; the alerts carry severity and annotations.
- deploy/k8s/prometheusrule.yaml holds exactly the groups of deploy/prometheus/alerts.yml
  (regenerate it with --write-prometheusrule).
- docker-compose, Kubernetes manifests and the Dockerfile are wired consistently (mounted files
  exist, ports and labels match, probes, non-root, grace period above the drain deadline).
- With --promtool=PATH: the alert unit tests (alerts_test.yml) pass, and every dashboard query
  parses as PromQL (with Grafana's variables replaced).

Usage: deploy/check_deploy.py [--root=REPO] [--promtool=PATH] [--write-prometheusrule]
Exit status 0 when everything holds; otherwise each problem is printed on its own line.
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

# Labels Prometheus attaches to every scraped series (static config or Kubernetes discovery).
TARGET_LABELS = {"job", "instance", "pod", "namespace", "container", "endpoint", "service"}
# Label names that are results of PromQL, not of series.
PROMQL_LABELS = {"le", "quantile"}

# What the dashboard must show (README: QPS, errors, latency, freshness, models, training,
# storage, process).
REQUIRED_DASHBOARD_METRICS = {
    "recd_requests_total", "recd_request_duration_seconds_bucket", "recd_requests_in_flight",
    "recd_interactions_ingested_total", "recd_interactions_rejected_total",
    "recd_model_freshness_lag_seconds", "recd_model_live_version", "recd_model_age_seconds",
    "recd_trainings_total", "recd_model_train_duration_seconds", "recd_model_metric",
    "recd_store_disk_bytes", "recd_store_pending_compaction_bytes", "recd_store_write_stopped",
    "recd_store_write_stall_seconds_total", "process_resident_memory_bytes", "process_cpu_seconds_total",
}
REQUIRED_ALERTS = {
    "RecdDown", "RecdHighLatencyP99", "RecdHighErrorRate", "RecdModelStale", "RecdModelRejected",
    "RecdStoreWritesStopped", "RecdStoreWriteStalls",
}
# Grafana variables, replaced before checking dashboard queries as PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
    "$job": "recd", "$instance": ".*", "$method": "Recommend", "$model": ".*",
}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def parse_metrics_header(path):
    """Returns {series name: set of label names} from the header comment of server/metrics.h."""
    series = {}
    in_list = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("//"):
                if in_list:
                    break
                continue
            text = line[2:]
            if text.strip().startswith("Series"):
                in_list = True
                continue
            if not in_list:
                continue
            histogram = "histogram" in text
            for m in re.finditer(r"\b((?:recd|process)_[a-z0-9_]+)(?:\{([a-z_,]*)\})?", text):
                name, labels = m.group(1), set(filter(None, (m.group(2) or "").split(",")))
                series[name] = labels
                if histogram:
                    series[name + "_bucket"] = labels | {"le"}
                    series[name + "_sum"] = labels
                    series[name + "_count"] = labels
    return series


METRIC_RE = re.compile(r"\b((?:recd|process)_[a-z0-9_]+)\b")
SELECTOR_RE = re.compile(r"\b((?:recd|process)_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER_RE = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING_RE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def strip_strings(expr):
    """Blanks out quoted strings so label values are not mistaken for names."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check_expr(where, expr, series, all_labels):
    bare = strip_strings(expr)
    names = set(METRIC_RE.findall(bare))
    for name in sorted(names):
        if name not in series:
            problem(where, f"metric {name} is not in server/metrics.h's series list")
    for m in SELECTOR_RE.finditer(strip_strings(expr)):
        name, body = m.group(1), m.group(2)
        if name not in series:
            continue
        for label in MATCHER_RE.findall(body):
            if label not in series[name] | TARGET_LABELS:
                problem(where, f"{name} has no label {label!r} (it has {sorted(series[name])})")
    for m in GROUPING_RE.finditer(bare):
        for label in filter(None, (s.strip() for s in m.group(1).split(","))):
            if label not in all_labels | TARGET_LABELS | PROMQL_LABELS:
                problem(where, f"grouping by unknown label {label!r}")
    return names


def load_all(root):
    docs = {}
    for dirpath, _, files in os.walk(os.path.join(root, "deploy")):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            try:
                if name.endswith((".yml", ".yaml")):
                    with open(path, encoding="utf-8") as f:
                        docs[rel] = [d for d in yaml.safe_load_all(f) if d is not None]
                elif name.endswith(".json"):
                    with open(path, encoding="utf-8") as f:
                        docs[rel] = [json.load(f)]
            except (yaml.YAMLError, json.JSONDecodeError) as e:
                problem(rel, f"does not parse: {e}")
    return docs


def dashboard_queries(dashboard):
    """(panel title, expr) for every query target, and the template variable queries."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def check_dashboard(rel, dash, series, all_labels):
    used = set()
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                if not p.get("targets"):
                    problem(rel, f"panel {p.get('title')!r} has no queries")
                if p.get("datasource", {}).get("uid") != "${datasource}":
                    problem(rel, f"panel {p.get('title')!r} does not use the $datasource variable")
                for key in ("x", "y", "w", "h"):
                    if key not in p.get("gridPos", {}):
                        problem(rel, f"panel {p.get('title')!r} has no gridPos.{key}")
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    if len(ids) != len(set(ids)) or None in ids:
        problem(rel, "panel ids are missing or not unique")
    for title, expr in dashboard_queries(dash):
        used |= check_expr(f"{rel} panel {title!r}", expr, series, all_labels)
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            m = re.fullmatch(r"label_values\((.*),\s*([a-z_]+)\)", query or "")
            if not m:
                problem(rel, f"variable {var.get('name')}: unexpected query {query!r}")
                continue
            used |= check_expr(f"{rel} variable {var['name']}", m.group(1), series, all_labels)
            selector_metric = METRIC_RE.search(m.group(1))
            if selector_metric and m.group(2) not in series.get(selector_metric.group(1), set()) | TARGET_LABELS:
                problem(rel, f"variable {var['name']}: {selector_metric.group(1)} has no label {m.group(2)!r}")
    for name in sorted(REQUIRED_DASHBOARD_METRICS - used):
        problem(rel, f"no panel shows {name}")
    if dash.get("uid") is None:
        problem(rel, "dashboard has no uid (provisioned dashboards need a stable one)")


def check_rules(rel, groups, series, all_labels):
    alerts = set()
    for group in groups:
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            check_expr(f"{rel} {name}", rule.get("expr", ""), series, all_labels)
            if "alert" in rule:
                alerts.add(rule["alert"])
                if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                    problem(rel, f"{name}: severity label must be critical, warning or info")
                for key in ("summary", "description", "runbook"):
                    if not rule.get("annotations", {}).get(key):
                        problem(rel, f"{name}: no {key} annotation")
    for name in sorted(REQUIRED_ALERTS - alerts):
        problem(rel, f"no alert {name}")
    return alerts


def prometheusrule_for(groups):
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "recd", "labels": {"app.kubernetes.io/name": "recd"}},
        "spec": {"groups": groups},
    }


PROMETHEUSRULE_HEADER = """\
# Prometheus Operator copy of deploy/prometheus/alerts.yml (the same groups, checked by
# deploy/check_deploy.py). Do not edit: change alerts.yml, then run
#   deploy/check_deploy.py --write-prometheusrule
# Your Prometheus resource's ruleSelector must match this object's labels (kube-prometheus-stack:
# add `release: <helm release name>`).
"""


class _BlockStyleDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks, as in alerts.yml."""


_BlockStyleDumper.add_representer(
    str, lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def write_prometheusrule(root, groups):
    path = os.path.join(root, "deploy/k8s/prometheusrule.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(PROMETHEUSRULE_HEADER)
        yaml.dump(prometheusrule_for(groups), f, Dumper=_BlockStyleDumper, sort_keys=False, width=120,
                  allow_unicode=True)


def container_env(container):
    return {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}


def check_k8s(docs):
    by_kind = {}
    for rel, items in docs.items():
        if not rel.startswith("deploy/k8s/"):
            continue
        for d in items:
            if isinstance(d, dict) and "kind" in d:
                by_kind.setdefault(d["kind"], []).append((rel, d))
    for kind in ("StatefulSet", "Service", "PodMonitor", "PrometheusRule", "Kustomization"):
        if kind not in by_kind:
            problem("deploy/k8s", f"no {kind}")
    if "StatefulSet" not in by_kind:
        return
    rel, sts = by_kind["StatefulSet"][0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    for k, v in spec["selector"]["matchLabels"].items():
        if pod_labels.get(k) != v:
            problem(rel, f"selector {k}={v} does not match the pod labels")
    services = {d["metadata"]["name"]: d for _, d in by_kind.get("Service", [])}
    if spec.get("serviceName") not in services or services[spec["serviceName"]]["spec"].get("clusterIP") != "None":
        problem(rel, "serviceName must name a headless Service")
    if not any(s["spec"].get("clusterIP") != "None" for s in services.values()):
        problem("deploy/k8s", "no regular (ClusterIP) Service")
    sc = pod.get("securityContext", {})
    if not sc.get("runAsNonRoot") or not sc.get("runAsUser"):
        problem(rel, "pod must run as a non-root user (runAsNonRoot, runAsUser)")
    if not sc.get("fsGroup"):
        problem(rel, "fsGroup is needed for the recd user to write the volume")
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    if not claims:
        problem(rel, "no volumeClaimTemplates (RocksDB needs a persistent volume)")
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports.get("grpc") != 50051 or ports.get("metrics") != 9464:
        problem(rel, "container ports must be grpc 50051 and metrics 9464")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if c.get(probe, {}).get("grpc", {}).get("port") != 50051:
            problem(rel, f"{probe} must be a gRPC probe on port 50051")
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in c.get("resources", {}).get(kind, {}):
                problem(rel, f"resources.{kind}.{res} missing")
    csc = c.get("securityContext", {})
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(rel, "allowPrivilegeEscalation must be false")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    env = container_env(c)
    data_dir = env.get("RECD_DATA_DIR", "/var/lib/recd/store")
    if not any(name in claims and data_dir.startswith(path) for name, path in mounts.items()):
        problem(rel, f"RECD_DATA_DIR {data_dir} is not on a persistent volume")
    drain = float(env.get("RECD_DRAIN_SECONDS", "10"))
    pre_stop = 0.0
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(cmd) == 2 and cmd[0] == "sleep":
        pre_stop = float(cmd[1])
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace < pre_stop + drain + 5:
        problem(rel, f"terminationGracePeriodSeconds {grace} leaves under 5 s after preStop {pre_stop} s + drain {drain} s")
    for _, svc in by_kind.get("Service", []):
        for k, v in svc["spec"].get("selector", {}).items():
            if pod_labels.get(k) != v:
                problem("deploy/k8s/service.yaml", f"{svc['metadata']['name']}: selector {k}={v} matches no pod")
        for p in svc["spec"].get("ports", []):
            if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
                problem("deploy/k8s/service.yaml", f"{svc['metadata']['name']}: targetPort {p.get('targetPort')} is not a container port")
    for prel, pm in by_kind.get("PodMonitor", []):
        pspec = pm["spec"]
        for k, v in pspec["selector"]["matchLabels"].items():
            if pod_labels.get(k) != v:
                problem(prel, f"selector {k}={v} matches no pod")
        if pod_labels.get(pspec.get("jobLabel")) != "recd":
            problem(prel, "jobLabel must name a pod label whose value is 'recd' (alerts select job=\"recd\")")
        for ep in pspec.get("podMetricsEndpoints", []):
            if ep.get("port") not in ports:
                problem(prel, f"port {ep.get('port')} is not a container port name")
    for krel, k in by_kind.get("Kustomization", []):
        for res in k.get("resources", []):
            if not os.path.exists(os.path.join(os.path.dirname(krel), res)):
                problem(krel, f"resource {res} does not exist")


def check_compose(root, rel, compose):
    services = compose.get("services", {})
    for name in ("recd", "prometheus", "grafana"):
        if name not in services:
            problem(rel, f"no service {name}")
    base = os.path.join(root, os.path.dirname(rel))
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")) and not os.path.exists(os.path.join(base, source)):
                problem(rel, f"{name}: mounted path {source} does not exist")
        build = svc.get("build")
        if build:
            ctx = os.path.join(base, build.get("context", "."))
            if not os.path.exists(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))):
                problem(rel, f"{name}: no Dockerfile in the build context")
    recd = services.get("recd", {})
    env = recd.get("environment", {})
    grace = recd.get("stop_grace_period", "10s")
    grace_s = float(re.fullmatch(r"(\d+)s", grace).group(1)) if re.fullmatch(r"\d+s", grace) else 0
    if grace_s < float(env.get("RECD_DRAIN_SECONDS", 10)) + 5:
        problem(rel, "recd stop_grace_period must exceed RECD_DRAIN_SECONDS by at least 5 s")
    prom = os.path.join(base, "prometheus/prometheus.yml")
    with open(prom, encoding="utf-8") as f:
        targets = [t for sc in yaml.safe_load(f).get("scrape_configs", []) for c in sc.get("static_configs", [])
                   for t in c.get("targets", [])]
    if "recd:9464" not in targets:
        problem("deploy/prometheus/prometheus.yml", "the compose target recd:9464 is not scraped")


def check_dockerfile(root):
    path = os.path.join(root, "Dockerfile")
    rel = "Dockerfile"
    if not os.path.exists(path):
        problem(rel, "missing")
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # Join continuation lines into instructions.
    instructions = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instructions.append(line)
    froms = [i for i in instructions if i.upper().startswith("FROM ")]
    if len(froms) < 2:
        problem(rel, "must be multi-stage (a build stage and a runtime stage)")
    if not re.search(r"ARG BUILD_IMAGE=debian:12\b", text) or not re.search(r"ARG RUNTIME_IMAGE=debian:12", text):
        problem(rel, "stages must be based on debian:12")
    if "tools/install-deps.sh" not in text:
        problem(rel, "the build stage must install dependencies with tools/install-deps.sh")
    users = [i.split(None, 1)[1] for i in instructions if i.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problem(rel, "the final stage must run as a non-root USER")
    if not any(i.upper().startswith("HEALTHCHECK ") and "recctl" in i and "health" in i for i in instructions):
        problem(rel, "HEALTHCHECK must use `recctl health`")
    expose = " ".join(i for i in instructions if i.upper().startswith("EXPOSE "))
    for port in ("50051", "9464"):
        if port not in expose:
            problem(rel, f"EXPOSE {port} missing")
    if not any(i.upper().startswith("VOLUME ") for i in instructions):
        problem(rel, "no VOLUME for the data")
    for env in ("RECD_LISTEN=0.0.0.0:", "RECD_METRICS_LISTEN=0.0.0.0:"):
        if env not in text:
            problem(rel, f"{env}... must be set so recd is reachable from outside the container")
    for path in re.findall(r"^COPY\s+(?!--from)(\S+)\s", text, flags=re.M):
        if path != "." and not os.path.exists(os.path.join(root, path)):
            problem(rel, f"COPY source {path} does not exist")


def run_promtool(root, promtool, dash_queries):
    with tempfile.TemporaryDirectory() as tmp:
        # Alert unit tests against the rules without annotations (promtool compares them verbatim).
        with open(os.path.join(root, "deploy/prometheus/alerts.yml"), encoding="utf-8") as f:
            rules = yaml.safe_load(f)
        stripped = copy.deepcopy(rules)
        for group in stripped["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        with open(os.path.join(tmp, "alerts.yml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(stripped, f, sort_keys=False)
        shutil.copy(os.path.join(root, "deploy/prometheus/alerts_test.yml"), tmp)
        r = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            problem("deploy/prometheus/alerts_test.yml", "promtool test rules failed:\n" + r.stdout + r.stderr)

        # Dashboard queries as recording rules: promtool parses each one.
        records = []
        for i, (title, expr) in enumerate(dash_queries):
            for var in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
                expr = expr.replace(var, GRAFANA_VARIABLES[var])
            records.append({"record": f"dashboard_query_{i}", "expr": expr})
        with open(os.path.join(tmp, "dashboard.yml"), "w", encoding="utf-8") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}, f, sort_keys=False)
        r = subprocess.run([promtool, "check", "rules", "dashboard.yml"], cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0:
            problem("deploy/grafana/dashboards", "a dashboard query is not valid PromQL:\n" + r.stdout + r.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--promtool", default="")
    parser.add_argument("--write-prometheusrule", action="store_true")
    args = parser.parse_args()
    root = args.root
    os.chdir(root)

    series = parse_metrics_header(os.path.join(root, "server/metrics.h"))
    if len(series) < 20:
        print(f"server/metrics.h: found only {len(series)} series in the header comment", file=sys.stderr)
        return 1
    all_labels = set().union(*series.values())
    docs = load_all(root)

    with open("deploy/prometheus/alerts.yml", encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    if args.write_prometheusrule:
        write_prometheusrule(root, groups)
        docs = load_all(root)

    check_rules("deploy/prometheus/alerts.yml", groups, series, all_labels)
    rule_doc = docs.get("deploy/k8s/prometheusrule.yaml", [{}])[0]
    if rule_doc != prometheusrule_for(groups):
        problem("deploy/k8s/prometheusrule.yaml",
                "differs from deploy/prometheus/alerts.yml; run deploy/check_deploy.py --write-prometheusrule")

    with open("deploy/prometheus/alerts_test.yml", encoding="utf-8") as f:
        for case in yaml.safe_load(f).get("tests", []):
            for s in case.get("input_series", []):
                check_expr("deploy/prometheus/alerts_test.yml", s["series"], series, all_labels)

    dash_queries = []
    for rel, items in docs.items():
        if rel.startswith("deploy/grafana/dashboards/") and rel.endswith(".json"):
            check_dashboard(rel, items[0], series, all_labels)
            dash_queries += dashboard_queries(items[0])
    if not dash_queries:
        problem("deploy/grafana/dashboards", "no dashboard")

    check_k8s(docs)
    if "deploy/docker-compose.yml" in docs:
        check_compose(root, "deploy/docker-compose.yml", docs["deploy/docker-compose.yml"][0])
    else:
        problem("deploy", "no docker-compose.yml")
    check_dockerfile(root)

    if args.promtool:
        run_promtool(root, args.promtool, dash_queries)

    for p in problems:
        print(p)
    if problems:
        print(f"check_deploy: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_deploy: ok ({len(docs)} files, {len(dash_queries)} dashboard queries, "
          f"{sum(len(g['rules']) for g in groups)} rules, {len(series)} series known)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks the monitoring profile of docker/docker-compose.yml without an
engine (ctest compose_monitoring):
    tests/compose_monitoring_check.py [path/to/docker-compose.yml]
- prometheus and grafana belong to profile "monitoring" and use official
  images pinned to a version tag;
- Prometheus (docker/prometheus/prometheus.yml) scrapes every Phonon service
  of the compose file, whatever its profile: each `serve` service on the
  container port it listens on, each `worker` service on its metrics
  listener (APP_METRICS_PORT, on 0.0.0.0); and no service that does not
  exist;
- every Phonon service reads the scraper's token from the file Prometheus
  sends (one secret file);
- every worker service's healthcheck asks its metrics listener's /healthz
  (the image's HEALTHCHECK asks :8080, where a worker serves nothing);
- Grafana gets the provisioning and the dashboard, and the dashboard's
  datasource uid is the provisioned one.
Reads `docker-compose config` with every profile on (docker-compose 1.29).
"""
import json
import os
import subprocess
import sys

import yaml

here = os.path.dirname(os.path.abspath(__file__))
compose_file = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    here, "..", "docker", "docker-compose.yml")
docker_dir = os.path.dirname(os.path.abspath(compose_file))
failures = []


def err(msg):
    failures.append(msg)


rendered = subprocess.run(
    ["docker-compose", "-f", compose_file, "--profile", "monitoring",
     "--profile", "scale", "--profile", "mysql", "config"],
    check=True, capture_output=True, text=True).stdout
services = yaml.safe_load(rendered)["services"]
prom = yaml.safe_load(open(os.path.join(docker_dir, "prometheus",
                                        "prometheus.yml")))

# -- the profile's services and their images ----------------------------------
expected_images = {"prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"}
for name, prefix in expected_images.items():
    svc = services.get(name)
    if svc is None:
        err(f"service {name} missing")
        continue
    if svc.get("profiles") != ["monitoring"]:
        err(f"{name}: profiles {svc.get('profiles')}, expected [monitoring]")
    image = svc.get("image", "")
    tag = image[len(prefix):] if image.startswith(prefix) else ""
    if not tag or tag == "latest" or not tag.lstrip("v")[:1].isdigit():
        err(f"{name}: image {image!r} is not {prefix}<version>")

# -- every Phonon process is scraped ------------------------------------------
jobs = {j["job_name"]: j for j in prom["scrape_configs"]}


def dns_targets(job_name):
    """(names, port) of a job's DNS service discovery."""
    job = jobs.get(job_name)
    if job is None:
        err(f"prometheus.yml: job {job_name} missing")
        return set(), None
    names, ports = set(), set()
    for sd in job.get("dns_sd_configs", []):
        names.update(sd["names"])
        ports.add(sd.get("port"))
    if len(ports) != 1:
        err(f"prometheus.yml: {job_name}: expected one port, got {ports}")
        return names, None
    return names, ports.pop()


serve_names, serve_port = dns_targets("phonon-serve")
worker_names, worker_port = dns_targets("phonon-worker")
phonon = {n: s for n, s in services.items()
          if s.get("image", "").startswith("phonon:")}
if len(phonon) < 5:
    err(f"expected at least 5 Phonon services, found {sorted(phonon)}")
token_file = {}
for name, svc in phonon.items():
    role = svc["command"][0]
    env = svc.get("environment") or {}
    token_file[name] = env.get("APP_METRICS_TOKEN_FILE")
    secrets = [s["source"] if isinstance(s, dict) else s
               for s in svc.get("secrets", [])]
    if "phonon_metrics_token" not in secrets:
        err(f"{name}: does not mount the secret phonon_metrics_token")
    if token_file[name] != "/run/secrets/phonon_metrics_token":
        err(f"{name}: APP_METRICS_TOKEN_FILE is {token_file[name]!r}")
    if role == "serve":
        if name not in serve_names:
            err(f"{name}: a serve node Prometheus does not scrape")
        listen = int(env.get("APP_SERVER_PORT", 8080))
        if listen != serve_port:
            err(f"{name}: listens on {listen}, scraped on {serve_port}")
    elif role == "worker":
        if name not in worker_names:
            err(f"{name}: a worker Prometheus does not scrape")
        if str(env.get("APP_METRICS_PORT")) != str(worker_port):
            err(f"{name}: APP_METRICS_PORT {env.get('APP_METRICS_PORT')!r}, "
                f"scraped on {worker_port}")
        if env.get("APP_METRICS_HOST") != "0.0.0.0":
            err(f"{name}: the metrics listener is not on 0.0.0.0")
        # The image's HEALTHCHECK asks :8080, where a worker serves
        # nothing: the service must ask its metrics listener's /healthz.
        health = " ".join((svc.get("healthcheck") or {}).get("test", []))
        if f"127.0.0.1:{env.get('APP_METRICS_PORT')}/healthz" not in health:
            err(f"{name}: healthcheck {health!r} does not ask the metrics "
                f"listener's /healthz")
    else:
        err(f"{name}: unknown role {role}")
for n in serve_names - {n for n, s in phonon.items() if s["command"][0] == "serve"}:
    err(f"prometheus.yml scrapes {n}, not a serve service of the compose file")
for n in worker_names - {n for n, s in phonon.items() if s["command"][0] == "worker"}:
    err(f"prometheus.yml scrapes {n}, not a worker service of the compose file")

def mounts(svc):
    """{container path: host path} of a service's volumes (docker-compose
    1.29 renders them as SOURCE:TARGET[:MODE] strings)."""
    out = {}
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = v.get("source")
        else:
            parts = v.split(":")
            out[parts[1]] = parts[0]
    return out


# -- Prometheus sends the token the Phonon services read ----------------------
for job_name in ("phonon-serve", "phonon-worker"):
    auth = jobs.get(job_name, {}).get("authorization", {})
    if auth.get("credentials_file") != "metrics-token":
        err(f"prometheus.yml: {job_name} does not send the metrics-token file")
mounted = mounts(services.get("prometheus", {}))
secret_src = yaml.safe_load(rendered).get("secrets", {}).get(
    "phonon_metrics_token", {}).get("file")
if mounted.get("/etc/prometheus/metrics-token") != secret_src or not secret_src:
    err("prometheus: /etc/prometheus/metrics-token is not the secret file "
        f"phonon_metrics_token ({mounted.get('/etc/prometheus/metrics-token')}"
        f" vs {secret_src})")
if mounted.get("/etc/prometheus/prometheus.yml") != os.path.join(
        docker_dir, "prometheus", "prometheus.yml"):
    err("prometheus: docker/prometheus/prometheus.yml not mounted")

# -- Grafana: provisioning, dashboard, datasource uid --------------------------
gmounted = mounts(services.get("grafana", {}))
if gmounted.get("/etc/grafana/provisioning") != os.path.join(
        docker_dir, "grafana", "provisioning"):
    err("grafana: docker/grafana/provisioning not mounted")
providers = yaml.safe_load(open(os.path.join(
    docker_dir, "grafana", "provisioning", "dashboards", "phonon.yml")))
dash_path = providers["providers"][0]["options"]["path"]
if gmounted.get(dash_path) != os.path.join(docker_dir, "grafana", "dashboards"):
    err(f"grafana: docker/grafana/dashboards not mounted at {dash_path}")
sources = yaml.safe_load(open(os.path.join(
    docker_dir, "grafana", "provisioning", "datasources", "prometheus.yml")))
ds = sources["datasources"][0]
if ds["url"] != "http://prometheus:9090" or ds["type"] != "prometheus":
    err(f"grafana datasource: {ds}")
dash = json.load(open(os.path.join(docker_dir, "grafana", "dashboards",
                                   "phonon.json")))
panels = [p for p in dash["panels"] if p["type"] != "row"]
if len(panels) < 30:
    err(f"dashboard: only {len(panels)} panels")
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    err("dashboard: panel ids are not unique")
for p in panels:
    if not p.get("targets") or not all(t.get("expr") for t in p["targets"]):
        err(f"dashboard: panel {p['title']!r} has no query")
    for ref in [p.get("datasource")] + [t.get("datasource") for t in p["targets"]]:
        if not ref or ref.get("uid") != ds["uid"]:
            err(f"dashboard: panel {p['title']!r} uses datasource {ref}")
    g = p["gridPos"]
    if g["x"] < 0 or g["x"] + g["w"] > 24:
        err(f"dashboard: panel {p['title']!r} is outside the grid")
for i, a in enumerate(dash["panels"]):
    for b in dash["panels"][i + 1:]:
        ga, gb = a["gridPos"], b["gridPos"]
        if (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]):
            err(f"dashboard: panels {a['title']!r} and {b['title']!r} overlap")

for f in failures:
    print("compose_monitoring_check: " + f, file=sys.stderr)
if not failures:
    print(f"compose_monitoring_check: ok ({len(phonon)} Phonon services "
          f"scraped, {len(panels)} panels)")
sys.exit(1 if failures else 0)

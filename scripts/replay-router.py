#!/usr/bin/env python3
"""Re-runs the deployments of a CI run on a fresh embedded router (`scripts/replay.sh --router`).

For each record: the same environment name, release, commit and strategy,
and the environment's checks from the config that the embedded router can
measure (error_rate, latency, compare; the others are listed as not
replayable), run against a new `sluice-router` with a stable and a candidate
`sluice-demo-app` under steady load. The candidate can be made to answer
errors or slowly (`--candidate-error-ratio`, `--candidate-latency`), to see
what the config makes of a release like the one that failed. The steps run
as the action runs them: gate, shift-traffic, verify-health, promote; a
failed analysis rolls back by itself. Each record's outcome is printed beside
the replayed one; step summaries go to DIR/summary.md.

Exit 0 when every replay ended as its record did, 1 otherwise, 2 on bad input.
"""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import tomllib

ROUTER_KINDS = ("error_rate", "latency", "compare")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"cannot write {v!r} as TOML")


def table(lines, header, values):
    lines.append(header)
    lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
    lines.append("")


class Processes:
    def __init__(self, out):
        self.out = out
        self.children = []

    def start(self, name, argv):
        ready = self.out / "run" / f"{name}.json"
        ready.unlink(missing_ok=True)
        log = open(self.out / "logs" / f"{name}.log", "w")
        child = subprocess.Popen(argv + ["--ready-file", str(ready)], stdout=subprocess.DEVNULL, stderr=log)
        self.children.append(child)
        for _ in range(200):
            if ready.exists() and ready.stat().st_size > 0:
                return json.loads(ready.read_text())
            if child.poll() is not None:
                sys.exit(f"replay: {name} exited at start (see {log.name})")
            time.sleep(0.05)
        sys.exit(f"replay: {name} did not start")

    def background(self, argv):
        self.children.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self):
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
        self.children = []


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--candidate-error-ratio", default="0")
    p.add_argument("--candidate-latency", default="0s")
    p.add_argument("--rps", default="100")
    p.add_argument("records", nargs="+")
    a = p.parse_args()
    out = pathlib.Path(a.out)
    (out / "run").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    try:
        with open(a.config, "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"replay.sh: cannot read config {a.config}: {e}; pass --config PATH (the config the run used)", file=sys.stderr)
        return 2
    envs = {e.get("name"): e for e in config.get("environment", [])}
    defaults = config.get("defaults", {})
    summary = out / "summary.md"
    summary.write_text("")
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    os.environ["GITHUB_OUTPUT"] = str(out / "outputs.txt")
    for k in ("GITHUB_ACTIONS", "GITHUB_TOKEN"):
        os.environ.pop(k, None)
    procs = Processes(out)
    same = 0
    rows = []
    try:
        for n, path in enumerate(a.records):
            try:
                record = json.loads(pathlib.Path(path).read_text())
            except (OSError, ValueError):
                print(f"skipped {path}: not JSON", file=sys.stderr)
                continue
            if not str(record.get("schema", "")).startswith("sluice.deployment/"):
                print(f"skipped {path}: not a sluice record", file=sys.stderr)
                continue
            env_name, version = record["environment"], record["version"]
            env = envs.get(env_name)
            if env is None:
                print(f"replay.sh: {path} is for environment {env_name!r}, which {a.config} does not define", file=sys.stderr)
                return 2
            checks = env.get("check") or defaults.get("check", [])
            kept = [c for c in checks if c.get("kind") in ROUTER_KINDS]
            dropped = [f"{c.get('name')} ({c.get('kind')})" for c in checks if c.get("kind") not in ROUTER_KINDS]
            if env.get("probe") or defaults.get("probe"):
                dropped.append("probes (they call the real service)")
            print(f"\n== {path}: {version} in {env_name}, recorded {record['status']}", file=sys.stderr)
            if dropped:
                print(f"   not replayable on the embedded router: {', '.join(dropped)}", file=sys.stderr)

            work = out / f"{n:02d}-{env_name}-{version}"
            work.mkdir(exist_ok=True)
            stable = procs.start(f"{n:02d}-stable", ["sluice-demo-app", "--listen", "127.0.0.1:0", "--version", "stable"])
            candidate = procs.start(
                f"{n:02d}-candidate",
                ["sluice-demo-app", "--listen", "127.0.0.1:0", "--version", version,
                 "--error-ratio", a.candidate_error_ratio, "--latency", a.candidate_latency, "--seed", "7"],
            )
            router = procs.start(
                f"{n:02d}-router",
                ["sluice-router", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--stable", f"http://{stable['listen']}"],
            )
            lines = [f"app = {toml_value(record['app'])}", ""]
            table(lines, "[ledger]", {"kind": "file", "path": "ledger.jsonl"})
            if "analysis" in config:
                table(lines, "[analysis]", config["analysis"])
            env_table = {"name": env_name, "router": {"kind": "local", "admin_url": f"http://{router['admin']}"},
                         "strategy": record["strategy"]}
            table(lines, "[[environment]]", env_table)
            for c in kept:
                table(lines, "[[environment.check]]", c)
            (work / "sluice.toml").write_text("\n".join(lines))
            procs.background(["sluice-loadgen", "--url", f"http://{router['listen']}/", "--rps", a.rps, "--duration", "1h"])
            time.sleep(1)

            def step(name, *args):
                argv = [name, "--config", "sluice.toml", "-e", env_name, "--record", "replay.json", *args]
                return subprocess.run(argv, cwd=work, stdout=open(work / "steps.out", "a")).returncode

            commit = record.get("commit") or "0000000"
            replayed = "refused"
            if step("gate", "--release", version, "--commit", commit) == 0:
                code = step("shift-traffic", "--candidate-upstream", f"http://{candidate['listen']}")
                if code == 0:
                    code = step("verify-health")
                    if code == 0:
                        code = step("promote")
                    else:
                        step("rollback", "--reason", "replayed verify-health did not pass")
                replayed = json.loads((work / "replay.json").read_text())["status"]
            procs.stop()
            recorded = record["status"]
            match = recorded == replayed or (recorded in ("verified", "promoted") and replayed == "promoted")
            same += match
            rows.append((path, env_name, version, recorded, replayed, match))
            print(f"   replayed: {replayed}{'' if match else '  (differs from the record)'}", file=sys.stderr)
    finally:
        procs.stop()
    print(summary.read_text())
    print("| record | environment | release | recorded | replayed |\n|---|---|---|---|---|")
    for path, env_name, version, recorded, replayed, match in rows:
        print(f"| {path} | {env_name} | {version} | {recorded} | {replayed}{'' if match else ' (differs)'} |")
    print(f"\nreplayed {len(rows)} record(s) on the embedded router; {same} ended as recorded; work in {out}", file=sys.stderr)
    return 0 if rows and same == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Runs the composite action (action.yml) on this machine, step by step, as
the GitHub runner does: each step's `if:` is evaluated, its `env:` expressions
are filled in from the inputs, the github context and earlier steps' outputs,
and its `run:` script runs in bash with a fresh GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY file, GITHUB_PATH / GITHUB_ENV, RUNNER_OS, RUNNER_ARCH,
RUNNER_TEMP, GITHUB_ACTION_PATH and GITHUB_ACTIONS=true set as on a runner.

The three `uses:` steps are stood in for locally: actions/cache restores and
saves a folder under --state, and the artifact actions copy files to and from
--state/artifacts/NAME/ (the layout `gh run download` produces).

  scripts/run-action.py --state DIR [--workspace DIR] [--input NAME=VALUE]...

Prints the action's outputs as NAME=VALUE lines on stdout, appends every
step's summary to --summary (default DIR/summary.md), and exits 1 when a step
failed, as the action would fail the job.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tokenize(expr):
    pattern = r"\s*(?:('(?:[^']|'')*')|(&&|\|\||==|!=|!|\(|\))|([A-Za-z_][A-Za-z0-9_.\-]*(?:\(\))?))"
    pos, tokens = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = re.compile(pattern).match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read the expression {expr!r} at {expr[pos:]!r}")
        tokens.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return tokens


class Context:
    def __init__(self, inputs, github, steps, state):
        self.inputs, self.github, self.steps, self.state = inputs, github, steps, state

    def lookup(self, name):
        parts = name.split(".")
        if parts[0] == "inputs":
            return self.inputs.get(parts[1], "")
        if parts[0] == "github":
            return self.github.get(parts[1], "")
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get("outputs", {}).get(parts[3], "")
        if parts[0] == "steps" and len(parts) == 3 and parts[2] in ("outcome", "conclusion"):
            return self.steps.get(parts[1], {}).get(parts[2], "")
        if name == "runner.temp":
            return os.environ["RUNNER_TEMP"]
        raise ValueError(f"unknown name in an expression: {name}")

    def evaluate(self, expr):
        """Evaluates the subset of the expression language action.yml uses."""
        out = []
        for tok in tokenize(expr):
            if tok == "&&":
                out.append(" and ")
            elif tok == "||":
                out.append(" or ")
            elif tok == "!":
                out.append(" not ")
            elif tok in ("==", "!=", "(", ")"):
                out.append(tok)
            elif tok.startswith("'"):
                out.append(repr(tok[1:-1].replace("''", "'")))
            elif tok == "failure()":
                out.append(repr(self.state["failed"]))
            elif tok == "success()":
                out.append(repr(not self.state["failed"] and not self.state["cancelled"]))
            elif tok == "cancelled()":
                out.append(repr(self.state["cancelled"]))
            elif tok == "always()":
                out.append("True")
            elif tok in ("true", "false"):
                out.append(repr(tok == "true"))
            else:
                out.append(repr(self.lookup(tok)))
        return eval("".join(out), {"__builtins__": {}})  # noqa: S307 - our own tokens only

    def fill(self, text):
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(self.evaluate(m.group(1))), str(text))


def read_outputs(path):
    """Parses a GITHUB_OUTPUT file (name=value and heredoc blocks)."""
    outputs = {}
    if not os.path.exists(path):
        return outputs
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


def uses_step(step, with_, ctx, args):
    """The local stand-ins for the actions the composite action uses."""
    action = step["uses"].split("@")[0]
    artifacts = os.path.join(args.state, "artifacts")
    if action == "actions/cache":
        # Restore now, save when the action ends (as the post step does).
        store = os.path.join(args.state, "cache", with_["key"])
        if os.path.isdir(store) and not os.path.exists(with_["path"]):
            shutil.copytree(store, with_["path"], symlinks=True)
            print(f"cache: restored {with_['key']}", file=sys.stderr)
        ctx.state["post"].append(lambda: None if os.path.isdir(store) or not os.path.isdir(with_["path"])
                                 else shutil.copytree(with_["path"], store, symlinks=True))
        return 0
    if action == "actions/download-artifact":
        pattern, path = with_.get("pattern", ""), with_["path"]
        src = os.path.join(artifacts, pattern)
        if os.path.isdir(src):
            os.makedirs(path, exist_ok=True)
            for name in os.listdir(src):
                shutil.copy2(os.path.join(src, name), os.path.join(path, name))
            print(f"download-artifact: {pattern} -> {path}", file=sys.stderr)
        else:
            print(f"download-artifact: found 0 artifacts matching {pattern}", file=sys.stderr)
        return 0
    if action == "actions/upload-artifact":
        path, name = with_["path"], with_["name"]
        if not os.path.exists(path):
            print(f"upload-artifact: no file at {path}; nothing uploaded", file=sys.stderr)
            return 0
        dest = os.path.join(artifacts, name)
        if os.path.isdir(dest):
            shutil.rmtree(dest)  # overwrite: true
        os.makedirs(dest)
        shutil.copy2(path, dest)
        print(f"upload-artifact: {path} -> {dest}", file=sys.stderr)
        return 0
    raise SystemExit(f"run-action.py: no local stand-in for {step['uses']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, help="folder for the cache, artifacts and step files")
    parser.add_argument("--workspace", default=os.getcwd(), help="the job's workspace (default: here)")
    parser.add_argument("--summary", help="append the step summaries here (default STATE/summary.md)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--action", default=os.path.join(ROOT, "action.yml"))
    args = parser.parse_args()
    args.state = os.path.abspath(args.state)
    os.makedirs(args.state, exist_ok=True)
    summary = os.path.abspath(args.summary or os.path.join(args.state, "summary.md"))

    action = yaml.safe_load(open(args.action, encoding="utf-8"))
    sha = os.environ.get("GITHUB_SHA") or "0" * 40
    github = {
        "sha": sha,
        "token": os.environ.get("GITHUB_TOKEN", ""),
        "action_repository": os.environ.get("GITHUB_ACTION_REPOSITORY", "sluice-dev/sluice"),
        "action_path": os.path.dirname(os.path.abspath(args.action)),
    }
    state = {"failed": False, "cancelled": False, "post": []}
    ctx = Context({}, github, {}, state)
    inputs = {}
    for name, spec in (action.get("inputs") or {}).items():
        inputs[name] = ctx.fill(spec.get("default", ""))
    for pair in args.input:
        name, _, value = pair.partition("=")
        if name not in inputs:
            raise SystemExit(f"run-action.py: action.yml has no input {name!r}")
        inputs[name] = value
    ctx.inputs = inputs

    job = os.path.join(args.state, "job")
    os.makedirs(job, exist_ok=True)
    base_env = dict(os.environ)
    base_env.update({
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": os.path.abspath(args.workspace),
        "GITHUB_SHA": sha,
        "GITHUB_ACTION_PATH": github["action_path"],
        "RUNNER_OS": base_env.get("RUNNER_OS", "Linux"),
        "RUNNER_ARCH": base_env.get("RUNNER_ARCH", "ARM64" if os.uname().machine in ("aarch64", "arm64") else "X64"),
        "RUNNER_TEMP": base_env.get("RUNNER_TEMP", os.path.join(args.state, "runner-temp")),
        "RUNNER_TOOL_CACHE": base_env.get("RUNNER_TOOL_CACHE", os.path.join(args.state, "tool-cache")),
        "GITHUB_PATH": os.path.join(job, "path"),
        "GITHUB_ENV": os.path.join(job, "env"),
    })
    os.makedirs(base_env["RUNNER_TEMP"], exist_ok=True)
    for name in ("path", "env"):
        open(os.path.join(job, name), "a").close()

    for n, step in enumerate(action["runs"]["steps"]):
        label = step.get("name") or step.get("id") or f"step {n}"
        condition = str(step.get("if", "success()"))
        if not re.search(r"\b(success|failure|cancelled|always)\(\)", condition):
            condition = f"success() && ({condition})"  # as GitHub does
        if not ctx.evaluate(condition):
            ctx.steps[step.get("id", f"_{n}")] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            continue
        print(f"::group::{label}", file=sys.stderr, flush=True)
        if "uses" in step:
            code = uses_step(step, {k: ctx.fill(v) for k, v in (step.get("with") or {}).items()}, ctx, args)
            outputs = {}
        else:
            out_file, sum_file = os.path.join(job, f"output-{n}"), os.path.join(job, f"summary-{n}")
            open(out_file, "w").close()
            open(sum_file, "w").close()
            env = dict(base_env)
            extra = [p for p in open(base_env["GITHUB_PATH"]).read().splitlines() if p]
            env["PATH"] = os.pathsep.join(list(reversed(extra)) + [base_env["PATH"]])
            env.update({k: ctx.fill(v) for k, v in (step.get("env") or {}).items()})
            env.update({"GITHUB_OUTPUT": out_file, "GITHUB_STEP_SUMMARY": sum_file})
            # Step output goes to the log (stderr); stdout is the action's outputs.
            code = subprocess.run(
                ["bash", "-e", "-c", step["run"]], env=env, cwd=args.workspace, stdout=sys.stderr
            ).returncode
            outputs = read_outputs(out_file)
            with open(summary, "a", encoding="utf-8") as s:
                s.write(open(sum_file, encoding="utf-8").read())
        print("::endgroup::", file=sys.stderr, flush=True)
        outcome = "success" if code == 0 else "failure"
        if code != 0:
            print(f"::error::{label} exited {code}", file=sys.stderr)
            state["failed"] = True
        ctx.steps[step.get("id", f"_{n}")] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}

    for post in state["post"]:
        post()
    for name, spec in (action.get("outputs") or {}).items():
        print(f"{name}={ctx.fill(spec['value'])}")
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

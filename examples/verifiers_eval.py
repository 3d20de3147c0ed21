"""End-to-end check of our `verifiers` >= 0.4 taskset: `vf-eval loong-env` on the local model, then its traces.

Run from the verifiers venv (`make verifiers-eval` does both):

    .venv-vf/bin/python examples/verifiers_eval.py --serve "uv run --frozen --no-sync loong serve" -n 2

Starts the local model server with the `--serve` command (it prints `base_url: ...`), runs `vf-eval` with
the tool-less `null` harness on the subprocess runtime, and fails unless every task has a trace whose
reward carries `loong_correctness` and no rollout errored. Prints the traces' rewards.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


def start_server(command: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start `command --port 0` and read the base URL and model id it prints."""
    # its own process group, so stopping it also stops what a wrapper (`uv run`) started
    proc = subprocess.Popen(
        [*shlex.split(command), "--port", "0"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    base_url = model = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        if line.startswith("base_url:"):
            base_url = line.split(":", 1)[1].strip()
        elif line.startswith("model:"):
            model = line.split(":", 1)[1].split()[0]
        if base_url and model:
            return proc, base_url, model
    raise SystemExit(f"the model server ({command}) exited without printing its base_url")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", required=True, help="command that serves the local model (gets --port 0)")
    parser.add_argument("-n", "--num-tasks", type=int, default=2)
    parser.add_argument("--domains", default='["logic"]', help="JSON list of seed domains")
    parser.add_argument("--max-tokens", type=int, default=192)
    args = parser.parse_args()

    vf_eval = shutil.which("vf-eval") or str(Path(sys.executable).parent / "vf-eval")
    server, base_url, model = start_server(args.serve)
    out = Path(tempfile.mkdtemp(prefix="loong-vf-eval-"))
    try:
        command = [
            vf_eval, "loong-env", "-m", model, "-n", str(args.num_tasks), "--no-push", "--no-rich",
            "--client.base-url", base_url, "--client.api-key-var", "LOONG_VF_KEY",
            "--env.agent.harness.id", "null", "--env.agent.runtime.type", "subprocess",
            "--env.taskset.domains", args.domains, "--sampling.max-tokens", str(args.max_tokens),
            "-o", str(out),
        ]  # fmt: skip
        print("$", shlex.join(command), flush=True)
        # the harness runs as a uv script: the venv's own uv comes first on PATH
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {**os.environ, "LOONG_VF_KEY": "local", "PATH": path}
        done = subprocess.run(command, check=False, env=env, capture_output=True)
        lines = [line for path in out.glob("*/traces.jsonl") for line in path.read_text().splitlines()]
        episodes = [json.loads(line) for line in lines if line.strip()]
        traces = [trace for episode in episodes for trace in episode.get("traces", [])]
        if done.returncode != 0 or len(episodes) != args.num_tasks:
            sys.stdout.write(done.stdout.decode()[-4000:] + done.stderr.decode()[-4000:])
            print(
                f"FAILED: vf-eval exit {done.returncode}, {len(episodes)} episodes for {args.num_tasks} tasks"
            )
            return 1
        bad = [t for t in traces if t.get("errors") or "loong_correctness" not in (t.get("rewards") or {})]
        bad += [e for e in episodes if e.get("errors") or not e.get("traces")]
        for trace in traces:
            print(json.dumps({"rewards": trace.get("rewards"), "metrics": trace.get("metrics")}))
        if bad:
            print(f"FAILED: {len(bad)} traces errored or carry no loong_correctness reward")
            return 1
        print(f"ok: vf-eval loong-env ran {len(traces)} tasks on {model}")
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

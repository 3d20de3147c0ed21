"""The built wheel works with no checkout: `loong seeds list` and one env episode run from a fresh venv.

The wheel is built with uv (offline, from its cache) and installed with `--no-deps` into a new venv outside
the checkout. Its dependencies come from this test run's environment through a path entry: that directory's
own `.pth` files (among them the editable install of the checkout) are not processed for such an entry, so
`loong_env` can only come from the wheel, which the test checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from uv import find_uv_bin

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[1]

EPISODE = """
import loong_env
from loong_env import Action, SingleStepEnv, load_seeds

print("package:", loong_env.__file__)
seeds = load_seeds("logic")
env = SingleStepEnv(seeds)
[obs] = env.reset_sync(seed=0)
[result] = env.step_sync([Action(index=0, llm_response="\\\\boxed{" + env.datapoints[0].final_answer + "}")])
print("reward:", result.reward, "domain:", obs.domain, "seeds:", len(seeds))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, outside the checkout, with the just-built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    uv = find_uv_bin()
    subprocess.run([uv, "build", "--wheel", "--offline", "--out-dir", str(tmp / "dist"), str(REPO)],
                   check=True, capture_output=True, text=True)
    [wheel] = (tmp / "dist").glob("loong_env-*.whl")
    venv = tmp / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_loong_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([uv, "pip", "install", "-q", "--offline", "--no-deps", "--python", str(venv / "bin" / "python"),
                    str(wheel)], check=True, capture_output=True, text=True)
    return venv


def _run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOONG_SEEDS") and k != "LOONG_VERIFIERS_DIR"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_installed_wheel_lists_the_seed_library(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, [str(installed / "bin" / "loong"), "seeds", "list"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shipped = sorted(p.name for p in (REPO / "seeds").iterdir() if (p / "seeds.jsonl").is_file())
    for domain in shipped:
        assert domain in proc.stdout


def test_installed_wheel_runs_an_env_episode(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, [str(installed / "bin" / "python"), "-c", EPISODE], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"package: {installed}" in proc.stdout  # the wheel's copy, not the checkout
    assert "reward: 1.0 domain: logic" in proc.stdout

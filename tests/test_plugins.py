"""Plug-in promises: loading by name, errors that name the file, and the physics_units plug-in's verdicts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loong_env.env import SingleStepEnv
from loong_env.errors import LoongError, PluginError
from loong_env.plugins import available_plugins, load_plugin
from loong_env.seeds.dataset import load_seeds
from loong_env.seeds.library import plugin_roots
from loong_env.types import Tolerance, VerificationStatus
from loong_env.verifiers.base import Verifier

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def physics() -> Verifier:
    return load_plugin("physics_units")


def test_shipped_plugin_loads_by_name_and_is_cached(physics):
    assert isinstance(physics, Verifier) and physics.name == "physics_units"
    assert load_plugin("physics_units") is physics
    assert "physics_units" in available_plugins()
    assert any((root / "physics_units.py").is_file() for root in plugin_roots())


@pytest.mark.parametrize(
    ("response", "reference", "status", "reason"),
    [
        ("So v = \\boxed{52.92 km/h}", "14.7 m/s", VerificationStatus.correct, "matches"),
        ("\\boxed{14.7 m/s}", "14.7 m/s", VerificationStatus.correct, "matches"),
        ("\\boxed{v = 14.7 m/s}", "14.7 m/s", VerificationStatus.correct, "matches"),
        ("\\boxed{v_{0} = 1470 cm/s}", "14.7 m/s", VerificationStatus.correct, "matches"),
        ("\\boxed{14.7\\,\\mathrm{m/s}}", "14.7 m/s", VerificationStatus.correct, "matches"),
        ("\\boxed{1470 \\text{cm/s}}", "14.7 m/s", VerificationStatus.correct, "matches"),
        ("\\boxed{981 cm/s^2}", "9.81 m/s**2", VerificationStatus.correct, "matches"),
        ("\\boxed{9.81 \\, \\mathrm{m\\,s^{-2}}}", "9.81 m/s**2", VerificationStatus.correct, "matches"),
        ("\\boxed{2.5 \\times 10^{3} J}", "2.5 kJ", VerificationStatus.correct, "matches"),
        ("\\boxed{298.15 K}", "25 degC", VerificationStatus.correct, "matches"),
        ("\\boxed{14.7 m}", "14.7 m/s", VerificationStatus.incorrect, "dimension mismatch"),
        ("\\boxed{14.7}", "14.7 m/s", VerificationStatus.incorrect, "missing unit"),
        ("\\boxed{30}", "30 degree", VerificationStatus.incorrect, "missing unit"),
        ("\\boxed{\\frac{\\pi}{6} rad}", "30 degree", VerificationStatus.correct, "matches"),
        ("\\boxed{12.5\\%}", "12.5 percent", VerificationStatus.correct, "matches"),
        ("\\boxed{14.8 m/s}", "14.7 m/s", VerificationStatus.incorrect, "expected"),
        ("\\boxed{5 cm}", "5 m", VerificationStatus.incorrect, "expected"),
        ("\\boxed{fast}", "14.7 m/s", VerificationStatus.incorrect, "unreadable quantity"),
        ("It is about 14.7 m/s.", "14.7 m/s", VerificationStatus.no_answer, "boxed"),
    ],
)
def test_physics_units_judges_after_unit_conversion(physics, response, reference, status, reason):
    result = physics.verify_sync(response, reference)
    assert result.status is status, result.reason
    assert result.reward == (1.0 if status is VerificationStatus.correct else 0.0)
    assert reason and reason in result.reason


def test_physics_units_uses_the_tolerance(physics):
    tol = Tolerance(rel=0.01)
    assert physics.verify_sync("\\boxed{53.2 km/h}", "14.7 m/s", tolerance=tol).correct
    assert not physics.verify_sync("\\boxed{53.2 km/h}", "14.7 m/s").correct
    assert not physics.verify_sync("\\boxed{54 km/h}", "14.7 m/s", tolerance=tol).correct


async def test_physics_units_async_and_batch(physics):
    results = await physics.verify_many(["\\boxed{1 km}", "\\boxed{1 kg}"], ["1000 m", "1000 m"])
    assert [r.status for r in results] == [VerificationStatus.correct, VerificationStatus.incorrect]


def _plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return path


def test_missing_plugin_names_the_expected_file(tmp_path):
    _plugin(tmp_path, "other", "")
    with pytest.raises(PluginError, match=r"no file nothere\.py in .*found there: .*other") as err:
        load_plugin("nothere", root=tmp_path)
    assert isinstance(err.value, LoongError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = 1\n", "must define a function `make_verifier"),
        ("import not_a_real_module_xyz\n", "importing .*bad_plugin.py failed with ModuleNotFoundError"),
        ("def make_verifier():\n    return 42\n", "must return a loong_env.verifiers.base.Verifier, got int"),
        ("def make_verifier():\n    raise ValueError('no config')\n", "raised ValueError: no config"),
    ],
)
def test_malformed_plugin_errors_name_the_file(tmp_path, body, message):
    path = _plugin(tmp_path, "bad_plugin", body)
    with pytest.raises(PluginError, match=message) as err:
        load_plugin("bad_plugin", root=tmp_path)
    assert str(path) in str(err.value)


def test_plugin_names_must_be_identifiers(tmp_path):
    with pytest.raises(PluginError, match="identifier"):
        load_plugin("../etc/passwd", root=tmp_path)


def test_a_well_formed_plugin_in_another_folder_loads(tmp_path):
    _plugin(
        tmp_path,
        "exact_text",
        "from loong_env.types import VerificationResult\n"
        "from loong_env.verifiers.base import Verifier\n"
        "class Exact(Verifier):\n"
        "    name = 'exact_text'\n"
        "    async def verify(self, response, reference, *, tolerance=None):\n"
        "        ok = response.strip() == reference\n"
        "        return VerificationResult(status='correct' if ok else 'incorrect', reward=float(ok))\n"
        "def make_verifier():\n"
        "    return Exact()\n",
    )
    verifier = load_plugin("exact_text", root=tmp_path)
    assert verifier.verify_sync(" yes ", "yes").correct
    assert not verifier.verify_sync("no", "yes").correct
    assert asyncio.run(verifier.verify("yes", "yes")).correct


async def test_a_domain_folder_carries_its_own_plugin(tmp_path):
    domain = tmp_path / "shouting"
    domain.mkdir()
    (domain / "domain.toml").write_text('name = "shouting"\nrequirements = []\nverifier = "loud"\n')
    (domain / "seeds.jsonl").write_text(
        '{"question": "Say yes, loudly.", "final_answer": "YES", "rationale": "print(\'YES\')", "difficulty": 1}\n'
    )
    _plugin(
        domain,
        "loud",
        "from loong_env.types import VerificationResult\n"
        "from loong_env.verifiers.base import SyncVerifier\n"
        "class Loud(SyncVerifier):\n"
        "    name = 'loud'\n"
        "    def verify_sync(self, response, reference, *, tolerance=None):\n"
        "        ok = response.strip().upper() == reference\n"
        "        return VerificationResult(status='correct' if ok else 'incorrect', reward=float(ok))\n"
        "def make_verifier():\n"
        "    return Loud()\n",
    )
    env = SingleStepEnv(load_seeds(domain))
    await env.reset(batch_size=1, seed=0)
    [result] = await env.step({0: "yes"})
    assert (result.verifier, result.reward) == ("loud", 1.0)


def test_a_domain_plugin_shadows_a_shared_one_of_the_same_name(tmp_path):
    _plugin(tmp_path, "physics_units", "def make_verifier():\n    return None\n")
    with pytest.raises(PluginError, match=str(tmp_path)):
        load_plugin("physics_units", domain_dir=tmp_path)  # the domain's file is the one used

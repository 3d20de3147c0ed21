"""Installs run no code of the data's choosing: wheels only, no direct references, no options from data.

The source distribution is a fixture made here (tests/sdist_fixture.py) and served from a local
find-links folder, offline, with private uv and environment caches; its build backend leaves a marker
file when it runs, which is how each test sees whether code from the requirement set ran on this host.
The refusal is shown in the one installer (`ensure_env`, which the env's verifiers and the reward server
reach through `Sandbox`), in the router the env and the reward server judge with, and in
`loong seeds validate`; `[sandbox]` in loong.toml opens it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sdist_fixture import REQUIREMENT, STARTUP_REQUIREMENT, make_sdist, make_startup_wheel

from loong_env.cli import main
from loong_env.errors import ConfigError
from loong_env.routing import VerifierRouter
from loong_env.sandbox import InstallRefusedError, Sandbox, ensure_env, normalize_requirements
from loong_env.sandbox.envs import MARKER, env_dir
from loong_env.seeds import load_seeds
from loong_env.seeds.validation import CheckStatus, validate_seeds
from loong_env.types import AnswerKey, VerificationStatus

pytestmark = pytest.mark.timeout(120)


class Host:
    """The test's host: where the fixture is served from, its marker, and the operator's loong.toml."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.links = root / "links"
        self.marker = root / "build-ran"
        self.sdist = make_sdist(self.links, self.marker)
        self.config = root / "loong.toml"
        self.config.write_text("")
        for key, value in {
            "UV_OFFLINE": "1",
            "UV_FIND_LINKS": str(self.links),
            "UV_CACHE_DIR": str(root / "uv-cache"),
            "LOONG_CACHE_DIR": str(root / "envs"),
            "LOONG_CONFIG": str(self.config),
        }.items():
            monkeypatch.setenv(key, value)

    def allow(self, **settings: bool) -> None:
        lines = [f"{k} = {str(v).lower()}" for k, v in settings.items()]
        self.config.write_text("[sandbox]\n" + "\n".join(lines) + "\n")

    def assert_no_host_path(self, message: str) -> None:
        from uv import find_uv_bin

        for path in (str(self.root), find_uv_bin(), str(Path.home() / ".cache")):
            assert path not in message, f"{path} in {message!r}"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    return Host(tmp_path, monkeypatch)


def test_a_requirement_only_a_source_distribution_satisfies_is_refused_and_builds_nothing(host):
    with pytest.raises(InstallRefusedError) as caught:
        ensure_env([REQUIREMENT], progress=False)
    message = str(caught.value)
    assert REQUIREMENT in message and "[sandbox] allow_source_builds = true" in message, message
    assert caught.value.setting == "allow_source_builds" and caught.value.requirements == [REQUIREMENT]
    assert not host.marker.exists(), "the build backend ran on the host"
    host.assert_no_host_path(message)
    left = [p for p in (host.root / "envs" / "envs").iterdir() if p.suffix != ".lock"]
    assert not left, "a half-made environment was left behind"


def test_startup_code_an_installed_wheel_ships_runs_in_the_jail_never_on_the_host(host):
    """A wheel installs without running code, but its .pth `import` line and its sitecustomize run when an
    interpreter starts in that environment: the jailed worker's may run them, the host's probe of the
    interpreter must not."""
    make_startup_wheel(host.links, host.marker)
    ensure_env([STARTUP_REQUIREMENT], progress=False)
    code = "import os, loongstartup\nprint(os.environ.get('LOONG_STARTUP_RAN'), loongstartup.ANSWER)"
    with Sandbox([STARTUP_REQUIREMENT], workers=1) as box:
        result = box.run_sync(code)
    assert result.stdout.split() == ["1", "42"], result  # the startup code is live: it ran in the jail
    assert not host.marker.exists(), "startup code of an installed wheel ran on the host"


def test_an_environment_is_compiled_when_made_and_one_made_before_when_next_used(host):
    """The jail mounts an environment read-only, so its bytecode is made on the host, without running it."""
    make_startup_wheel(host.links, host.marker)
    ensure_env([STARTUP_REQUIREMENT], progress=False)
    root = env_dir([STARTUP_REQUIREMENT])

    def compiled() -> list[Path]:
        return list(root.rglob("loongstartup/__pycache__/__init__.*.pyc"))

    marker = json.loads((root / MARKER).read_text())
    assert compiled() and marker["bytecode"] is True
    for pyc in compiled():
        pyc.unlink()
    del marker["bytecode"]
    (root / MARKER).write_text(json.dumps(marker))  # as an environment made before compiling was
    ensure_env([STARTUP_REQUIREMENT], progress=False)
    assert compiled() and json.loads((root / MARKER).read_text())["bytecode"] is True
    assert not host.marker.exists(), "compiling ran the wheel's startup code on the host"


def test_the_operator_may_allow_source_builds(host):
    host.allow(allow_source_builds=True)
    python = ensure_env([REQUIREMENT], progress=False)
    assert python.exists() and host.marker.read_text().count("build backend ran") >= 1


@pytest.mark.parametrize(
    "reference",
    ["loongfixture @ https://example.invalid/loongfixture-0.1.0.tar.gz", "loongfixture @ file:///{sdist}"],
    ids=["url", "file"],
)
def test_url_and_file_references_are_refused_by_default(host, reference):
    reference = reference.format(sdist=str(host.sdist).lstrip("/"))
    with pytest.raises(InstallRefusedError) as caught:
        ensure_env([reference], progress=False)
    message = str(caught.value)
    assert "[sandbox] allow_direct_references = true" in message and "loongfixture @ " in message, message
    assert caught.value.setting == "allow_direct_references"
    assert not host.marker.exists()


def test_a_misspelt_setting_is_an_error_naming_the_file_not_a_silent_default(host):
    host.config.write_text("[sandbox]\nallow_source_build = true\n")
    with pytest.raises(ConfigError, match=r"\[sandbox\] has unknown settings \['allow_source_build'\]"):
        ensure_env([REQUIREMENT], progress=False)
    host.config.write_text('[sandbox]\nallow_source_builds = "maybe"\n')
    with pytest.raises(ConfigError, match=r"\[sandbox\] is invalid: allow_source_builds"):
        ensure_env([REQUIREMENT], progress=False)


def test_the_operator_may_allow_direct_references(host):
    host.allow(allow_direct_references=True, allow_source_builds=True)
    assert ensure_env([f"loongfixture @ {host.sdist.as_uri()}"], progress=False).exists()
    assert host.marker.exists()


@pytest.mark.parametrize(
    "smuggled",
    [
        "--index-url=https://example.invalid/simple",
        "--extra-index-url https://example.invalid/simple",
        "-e .",
        "-f /tmp",
        "https://example.invalid/x-1.0-py3-none-any.whl",
        "./some/folder",
        "git+https://example.invalid/x.git",
        "sympy\n--index-url https://example.invalid/simple",
    ],
)
def test_options_indexes_and_bare_locations_are_never_taken_from_data(host, smuggled):
    host.allow(allow_direct_references=True, allow_source_builds=True)  # not even when references are
    with pytest.raises(ConfigError, match="invalid requirement"):
        normalize_requirements([smuggled])
    with pytest.raises(ConfigError, match="invalid requirement"):
        ensure_env([smuggled], progress=False)


def test_the_env_and_reward_servers_judge_reports_the_refusal_as_its_verdict(host):
    router = VerifierRouter()
    key = AnswerKey(reference="42", domain="fixture", requirements=[REQUIREMENT])
    result, _ = asyncio.run(router.judge("```python\nimport loongfixture\nprint(loongfixture.ANSWER)\n```", key))
    assert result.status is VerificationStatus.error and result.reward == 0.0
    assert REQUIREMENT in result.reason and "allow_source_builds" in result.reason, result.reason
    assert not host.marker.exists()
    host.assert_no_host_path(result.reason)


def _domain_requiring(root: Path, requirement: str) -> Path:
    folder = root / "fixture_domain"
    folder.mkdir()
    toml = f'name = "fixture_domain"\nrequirements = [{json.dumps(requirement)}]\nlicense = "MIT"\n'
    (folder / "domain.toml").write_text(toml)
    record = {"question": "?", "final_answer": "42", "rationale": "import loongfixture\nprint(42)"}
    (folder / "seeds.jsonl").write_text(json.dumps({**record, "difficulty": 1}) + "\n")
    return folder


def test_seeds_validate_marks_a_refused_requirement_env_error_with_the_setting(host, capsys):
    folder = _domain_requiring(host.root, REQUIREMENT)
    report = asyncio.run(validate_seeds(load_seeds(folder), relax=True))
    (check,) = report.checks
    assert check.status is CheckStatus.env_error
    assert REQUIREMENT in check.reason and "[sandbox] allow_source_builds = true" in check.reason, check.reason
    assert main(["seeds", "validate", "--no-reachability", str(folder)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"env_error [{REQUIREMENT}]" in out and "allow_source_builds" in out, out
    assert not host.marker.exists()

    host.allow(allow_source_builds=True)
    assert main(["seeds", "validate", "--no-reachability", str(folder)]) == 0
    assert host.marker.exists()


def test_seeds_validate_does_not_relax_a_refused_reference_into_an_index_install(host):
    folder = _domain_requiring(host.root, f"loongfixture @ {host.sdist.as_uri()}")
    report = asyncio.run(validate_seeds(load_seeds(folder), relax=True))
    (check,) = report.checks
    assert check.status is CheckStatus.env_error and not check.relaxed
    assert "allow_direct_references" in check.reason, check.reason

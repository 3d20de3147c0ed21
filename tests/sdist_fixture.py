"""A tiny source distribution and a tiny wheel made at test time, each leaving a mark when its code runs.

`make_sdist(folder, marker)` writes `loongfixture-0.1.0.tar.gz` into `folder` (used as uv's find-links):
a package whose only distribution is an sdist, built by an in-tree PEP 517 backend (no setuptools, so it
builds offline) that writes `marker` when it runs. The marker is how a test sees whether code from a
requirement set ran on the host.

`make_startup_wheel(folder, marker)` writes `loongstartup-0.1.0-py3-none-any.whl`: installing a wheel runs
nothing, but this one ships what an interpreter runs when it starts, a `.pth` file with an `import` line and
a `sitecustomize` module. Both append to `marker` and set $LOONG_STARTUP_RAN, so a test sees where they ran.
"""

from __future__ import annotations

import inspect
import io
import tarfile
import textwrap
from pathlib import Path

NAME, VERSION = "loongfixture", "0.1.0"
REQUIREMENT = f"{NAME}=={VERSION}"


def write_wheel(folder: str, name: str, version: str, files: dict[str, str]) -> str:
    """A py3-none-any wheel of `files` (path -> text) with its METADATA, WHEEL and RECORD; its path."""
    # imported here: this function's source is also part of the build backend's (see BACKEND)
    import base64
    import hashlib
    import os
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: fixture\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


BACKEND = """
import os

NAME, VERSION, MARKER = {name!r}, {version!r}, {marker!r}
DIST = f"{{NAME}}-{{VERSION}}.dist-info"
METADATA = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"


def _mark():
    with open(MARKER, "a") as fh:
        fh.write("build backend ran\\n")


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _mark()
    os.makedirs(os.path.join(metadata_directory, DIST))
    with open(os.path.join(metadata_directory, DIST, "METADATA"), "w") as fh:
        fh.write(METADATA)
    return DIST


{write_wheel}

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark()
    return os.path.basename(write_wheel(wheel_directory, NAME, VERSION, {{f"{{NAME}}/__init__.py": "ANSWER = 42\\n"}}))
"""


def make_sdist(folder: Path, marker: Path) -> Path:
    """Write the fixture sdist into `folder`; its backend appends a line to `marker` whenever it runs."""
    folder.mkdir(parents=True, exist_ok=True)
    top = f"{NAME}-{VERSION}"
    members = {
        "pyproject.toml": textwrap.dedent(
            f"""
            [build-system]
            requires = []
            build-backend = "backend"
            backend-path = ["."]

            [project]
            name = "{NAME}"
            version = "{VERSION}"
            """
        ),
        "backend.py": BACKEND.format(
            name=NAME, version=VERSION, marker=str(marker), write_wheel=inspect.getsource(write_wheel)
        ),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n",
    }
    path = folder / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


STARTUP_NAME = "loongstartup"
STARTUP_REQUIREMENT = f"{STARTUP_NAME}=={VERSION}"


def make_startup_wheel(folder: Path, marker: Path) -> Path:
    """Write the fixture wheel into `folder`; its startup code appends to `marker` wherever it runs."""
    folder.mkdir(parents=True, exist_ok=True)
    mark = (
        "import os; os.environ['LOONG_STARTUP_RAN'] = '1'; "
        f"open({str(marker)!r}, 'a').write('startup code ran\\n')"
    )
    files = {
        f"{STARTUP_NAME}/__init__.py": "ANSWER = 42\n",
        f"{STARTUP_NAME}.pth": mark + "\n",
        "sitecustomize.py": mark.replace("; ", "\n") + "\n",
    }
    return Path(write_wheel(str(folder), STARTUP_NAME, VERSION, files))

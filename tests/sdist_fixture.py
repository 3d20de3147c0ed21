"""A tiny source distribution made at test time, whose build backend leaves a mark when it runs.

`make_sdist(folder, marker)` writes `loongfixture-0.1.0.tar.gz` into `folder` (used as uv's find-links):
a package whose only distribution is an sdist, built by an in-tree PEP 517 backend (no setuptools, so it
builds offline) that writes `marker` when it runs. The marker is how a test sees whether code from a
requirement set ran on the host.
"""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

NAME, VERSION = "loongfixture", "0.1.0"
REQUIREMENT = f"{NAME}=={VERSION}"

BACKEND = '''
import base64, hashlib, os, zipfile

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


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark()
    files = {{
        f"{{NAME}}/__init__.py": "ANSWER = 42\\n",
        f"{{DIST}}/METADATA": METADATA,
        f"{{DIST}}/WHEEL": "Wheel-Version: 1.0\\nGenerator: fixture\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(text.encode())}}")
    record.append(f"{{DIST}}/RECORD,,")
    files[f"{{DIST}}/RECORD"] = "\\n".join(record) + "\\n"
    name = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return name
'''


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
        "backend.py": BACKEND.format(name=NAME, version=VERSION, marker=str(marker)),
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

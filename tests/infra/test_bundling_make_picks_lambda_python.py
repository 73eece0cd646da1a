"""`make install` builds .venv with the Lambda runtime's Python, found the way the Makefile promises.

Each case runs the real Makefile in a copy of the project with a PATH and a pyenv root of its own:
the interpreters are stand-ins that answer the Makefile's version probe, and `make -n` only prints
the recipes, so nothing is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.bundling import LAMBDA_PYTHON_VERSION
from infra.config import REPO_ROOT

MAKE_TIMEOUT_SECONDS = 60
# What the Makefile's parse-time probes call; nothing else of the machine is on PATH.
TOOLS = ("sed", "ls", "grep", "sort", "tail", "id")


def stand_in_python(path: Path, version: str) -> Path:
    """An executable that, like a real interpreter asked by the Makefile, prints its major.minor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what the Makefile reads at parse time, and the bin folder it finds tools in."""
    root = tmp_path / "project"
    (root / "infra").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "package.json", "package-lock.json", "infra/bundling.py"):
        shutil.copy2(REPO_ROOT / name, root / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return root


def make(project: Path, *args: str, pyenv_root: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(project.parent / "bin"), "HOME": str(project.parent), "PYENV_ROOT": str(pyenv_root), **extra_env}
    return subprocess.run(
        [shutil.which("make"), "--no-print-directory", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
    )


def venv_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if " -m venv " in line]


def test_without_the_lambda_python_install_stops_with_one_line_naming_it(project: Path, tmp_path: Path) -> None:
    # Given a machine whose only python3.X is a pyenv shim that fails, and whose pyenv has other versions
    version = LAMBDA_PYTHON_VERSION
    shim = project.parent / "bin" / f"python{version}"
    shim.write_text("#!/bin/sh\necho 'pyenv: python command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    pyenv_root = tmp_path / "pyenv"
    stand_in_python(pyenv_root / "versions/3.11.7/bin/python3.11", "3.11")
    # When `make install` runs
    result = make(project, "install", pyenv_root=pyenv_root)
    # Then it stops before touching .venv, with one line saying which Python is needed and why
    assert result.returncode != 0
    assert not (project / ".venv").exists()
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith(
        f"make: no working Python {version} (the functions deploy on Lambda python{version}"
    ), result.stderr
    assert f"pyenv install {version}" in first_line and f"PYTHON=/path/to/python{version}" in first_line


def test_pyenv_newest_release_of_the_lambda_version_is_picked(project: Path, tmp_path: Path) -> None:
    # Given no python3.X on PATH, and pyenv holding two releases of it, a free-threaded build and another minor
    version = LAMBDA_PYTHON_VERSION
    pyenv_root = tmp_path / "pyenv"
    for release in ("2", "10"):
        stand_in_python(pyenv_root / f"versions/{version}.{release}/bin/python{version}", version)
    stand_in_python(pyenv_root / f"versions/{version}.11t/bin/python{version}", version)
    stand_in_python(pyenv_root / "versions/3.99.0/bin/python3.99", "3.99")
    # When make shows what `make install` would run
    result = make(project, "-n", "install", pyenv_root=pyenv_root)
    # Then .venv is (re)built from the newest regular release (10 after 2: by version, not by text)
    assert result.returncode == 0, result.stderr
    assert venv_lines(result) == [f"{pyenv_root}/versions/{version}.10/bin/python{version} -m venv --clear .venv"]
    assert f"touch .venv/.installed-python{version}" in result.stdout


def test_a_working_lambda_python_on_path_comes_before_pyenv(project: Path, tmp_path: Path) -> None:
    # Given python3.X on PATH that runs, and a pyenv release of the same version
    version = LAMBDA_PYTHON_VERSION
    stand_in_python(project.parent / "bin" / f"python{version}", version)
    pyenv_root = tmp_path / "pyenv"
    stand_in_python(pyenv_root / f"versions/{version}.9/bin/python{version}", version)
    # When make shows what `make install` would run
    result = make(project, "-n", "install", pyenv_root=pyenv_root)
    # Then the one on PATH builds .venv
    assert result.returncode == 0, result.stderr
    assert venv_lines(result) == [f"python{version} -m venv --clear .venv"]


def test_a_venv_made_by_another_python_is_rebuilt_and_a_current_one_kept(project: Path, tmp_path: Path) -> None:
    # Given a .venv installed by Python 3.11 (its stamp says so), and the Lambda version in pyenv
    version = LAMBDA_PYTHON_VERSION
    pyenv_root = tmp_path / "pyenv"
    stand_in_python(pyenv_root / f"versions/{version}.1/bin/python{version}", version)
    (project / ".venv").mkdir()
    (project / ".venv/.installed-python3.11").touch()
    # When make shows what `make install` would run
    stale = make(project, "-n", "install", pyenv_root=pyenv_root)
    # Then .venv is cleared and rebuilt with the Lambda version
    assert stale.returncode == 0, stale.stderr
    assert venv_lines(stale) == [f"{pyenv_root}/versions/{version}.1/bin/python{version} -m venv --clear .venv"]
    # And once it carries the Lambda version's stamp, newer than pyproject.toml, it is left alone
    (project / f".venv/.installed-python{version}").touch()
    current = make(project, "-n", "install", pyenv_root=pyenv_root)
    assert current.returncode == 0, current.stderr
    assert venv_lines(current) == []


def test_python_override_still_wins(project: Path, tmp_path: Path) -> None:
    # Given the Lambda version in pyenv, and a user naming another interpreter (e.g. for `make run` on 3.11)
    version = LAMBDA_PYTHON_VERSION
    pyenv_root = tmp_path / "pyenv"
    stand_in_python(pyenv_root / f"versions/{version}.1/bin/python{version}", version)
    other = stand_in_python(tmp_path / "elsewhere/python3", "3.11")
    # When make shows what `make install PYTHON=...` would run, given as an argument or from the environment
    for result in (
        make(project, "-n", "install", f"PYTHON={other}", pyenv_root=pyenv_root),
        make(project, "-n", "install", pyenv_root=pyenv_root, PYTHON=str(other)),
    ):
        # Then that interpreter builds .venv, and the stamp records its version (so a later plain `make` rebuilds)
        assert result.returncode == 0, result.stderr
        assert venv_lines(result) == [f"{other} -m venv --clear .venv"]
        assert "touch .venv/.installed-python3.11" in result.stdout

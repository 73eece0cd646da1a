"""Build a function's asset locally, without Docker.

pip installs the function's pinned requirements as manylinux wheels for the Lambda platform
(binary only, so nothing is compiled for the wrong machine), then the function's own package
and the shared contract are copied beside them. It needs no Docker and no AWS credentials, but
it is not offline: pip downloads the wheels from PyPI (or its index) unless its cache has them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
SHARED_PACKAGES = ("contract",)
# python3.13 on Amazon Linux 2023, the newest Lambda Python this project can install and test on
# (AWS deprecation 2029-06-30); the Makefile builds .venv with this version, so tests run it too.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
LAMBDA_PYTHON_VERSION = "3.13"
LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# The Lambda Python runtime ships these; aws-xray-sdk drags in a second botocore (~30 MB).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# A stalled index must fail the synth, not hang it: a cold download of both functions' wheels takes ~1 min.
PIP_TIMEOUT_SECONDS = 600


class BundlingFailed(RuntimeError):
    """pip could not produce the bundle; the message carries pip's own words."""


def bundle_function(function: str, output_dir: Path) -> None:
    """Write the deployable tree of `functions/<function>` into `output_dir`.

    The result is `functions/__init__.py`, `functions/contract/`, `functions/<function>/` and
    the third-party packages of `functions/<function>/requirements.txt` at the top level.
    """
    source = FUNCTIONS_DIR / function
    requirements = source / "requirements.txt"
    if not requirements.is_file():
        raise BundlingFailed(f"{requirements} is missing")
    output_dir.mkdir(parents=True, exist_ok=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(output_dir),
        "--requirement",
        str(requirements),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        *(arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)),
        "--upgrade",
    ]
    try:
        result = subprocess.run(pip, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise BundlingFailed(
            f"pip could not bundle {function} within {PIP_TIMEOUT_SECONDS} s (is the package index reachable?)"
        ) from None
    if result.returncode != 0:
        raise BundlingFailed(f"pip could not bundle {function}:\n{result.stderr.strip()}")
    for provided in RUNTIME_PROVIDED:
        for path in [output_dir / provided, *output_dir.glob(f"{provided}-*.dist-info")]:
            shutil.rmtree(path, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt")
    package_root = output_dir / "functions"
    package_root.mkdir(exist_ok=True)
    shutil.copy2(FUNCTIONS_DIR / "__init__.py", package_root / "__init__.py")
    for package in (*SHARED_PACKAGES, function):
        shutil.copytree(FUNCTIONS_DIR / package, package_root / package, ignore=ignore, dirs_exist_ok=True)


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundling:
    """CDK's hook for bundling on this machine instead of in a Docker container."""

    def __init__(self, function: str) -> None:
        self._function = function

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_: object) -> bool:
        bundle_function(self._function, Path(output_dir))
        return True


def function_code(function: str) -> lambda_.Code:
    """The asset of `functions/<function>`, hashed over its sources and pinned requirements."""
    other_functions = [
        p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir() and p.name not in (*SHARED_PACKAGES, function)
    ]
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=["__pycache__", "*.pyc", *other_functions],
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=cdk.DockerImage.from_registry(f"public.ecr.aws/sam/build-python{LAMBDA_PYTHON_VERSION}"),
            local=LocalPythonBundling(function),
        ),
    )

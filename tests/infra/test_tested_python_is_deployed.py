"""The suite runs on the Python the functions deploy on, so what passes here is what Lambda runs."""

from __future__ import annotations

import sys

from aws_cdk.assertions import Template

from infra.bundling import LAMBDA_PYTHON_VERSION


def test_the_suite_runs_on_the_python_every_function_deploys_on(prod: Template) -> None:
    # Given the runtime of every function of ours in the synthesized stack (CDK's own helpers excluded)
    runtimes = {
        function["Properties"]["Runtime"]
        for function in prod.find_resources("AWS::Lambda::Function").values()
        if function["Properties"].get("Handler", "").startswith("functions.")
    }
    # When it is compared with the interpreter running this test
    running = f"python{sys.version_info.major}.{sys.version_info.minor}"
    # Then all functions deploy on the version the Makefile builds .venv with (infra/bundling.py)...
    assert runtimes == {f"python{LAMBDA_PYTHON_VERSION}"}, (
        f"LAMBDA_RUNTIME and LAMBDA_PYTHON_VERSION disagree in infra/bundling.py: {runtimes}"
    )
    # ...and that is the version the tests run on
    assert running == f"python{LAMBDA_PYTHON_VERSION}", (
        f"the tests run on {running} ({sys.executable}) but the functions deploy on python{LAMBDA_PYTHON_VERSION}: "
        f"run `make install` (it rebuilds .venv with Python {LAMBDA_PYTHON_VERSION}, or "
        f"PYTHON=/path/to/python{LAMBDA_PYTHON_VERSION}), then `make test`"
    )

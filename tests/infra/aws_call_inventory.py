"""A static inventory of the AWS API calls each function's code makes, read from `functions/` with `ast`.

For a handler module it follows the imports inside `functions/`, notes which AWS services the code builds
clients for (`boto3.client("svc")`, `bounded_client("svc")`, Powertools' Secrets Manager provider), and which
methods it calls that are operations of those services (botocore's own service models name them). Each
operation becomes the IAM action AWS authorizes it with: `<signing name>:<OperationName>`, as the Service
Authorization Reference lists for these services
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from infra.config import REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"
CLIENT_FACTORIES = {"client", "bounded_client"}  # boto3.client("svc", ...), aws_clients.bounded_client("svc")
# Powertools' Secrets Manager helpers call GetSecretValue on their own client.
SECRETS_HELPERS = {"SecretsProvider", "secrets_provider", "get_secret"}


@dataclass(frozen=True)
class ClientCall:
    """One place that builds an AWS client (or a helper that holds one)."""

    module: str
    line: int
    factory: str
    service: str | None
    keywords: frozenset[str]


@dataclass
class Inventory:
    modules: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)  # IAM actions, e.g. "ssm:GetParameter"
    client_calls: list[ClientCall] = field(default_factory=list)


@cache
def _operations(service: str) -> tuple[str, dict[str, str]]:
    """The IAM prefix of `service` and its operations by their boto3 method name."""
    model = botocore.session.get_session().get_service_model(service)
    return model.signing_name, {xform_name(name): name for name in model.operation_names}


def _module_path(module: str) -> Path | None:
    relative = Path(*module.split("."))
    for candidate in (REPO_ROOT / relative.with_suffix(".py"), REPO_ROOT / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("functions"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("functions"))
    return {module for module in found if _module_path(module)}


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def inventory(handler_module: str) -> Inventory:
    """What the code reachable from `handler_module` calls in AWS."""
    result = Inventory()
    pending, method_names = [handler_module], set()
    while pending:
        module = pending.pop()
        if module in result.modules:
            continue
        result.modules.add(module)
        tree = ast.parse(_module_path(module).read_text(encoding="utf-8"))
        pending.extend(_imports(tree) - result.modules)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            if name in CLIENT_FACTORIES and node.args and isinstance(node.args[0], ast.Constant):
                service = node.args[0].value
                result.services.add(service)
                result.client_calls.append(
                    ClientCall(module, node.lineno, name, service, frozenset(k.arg for k in node.keywords if k.arg))
                )
            elif name in SECRETS_HELPERS:
                result.services.add("secretsmanager")
                result.actions.add("secretsmanager:GetSecretValue")
                result.client_calls.append(
                    ClientCall(
                        module, node.lineno, name, "secretsmanager", frozenset(k.arg for k in node.keywords if k.arg)
                    )
                )
            elif isinstance(node.func, ast.Attribute):
                method_names.add(name)
    for service in result.services:
        prefix, operations = _operations(service)
        result.actions.update(f"{prefix}:{operations[name]}" for name in method_names if name in operations)
    return result

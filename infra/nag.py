"""cdk-nag acknowledgements: every one names the rule and says why it does not apply."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, *rules: tuple[str, str]) -> None:
    """Acknowledge `(rule id, reason)` pairs on `scope` and everything under it."""
    for rule_id, reason in rules:
        if not reason.strip():
            raise ValueError(f"an acknowledgement of {rule_id} needs a reason")
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id, reason in rules))

"""EC2 refuses a security group, or one of its rules, whose description holds a character outside its set.

CloudFormation then fails the stack with "Invalid rule description. Valid descriptions are strings less than
256 characters from the following set: a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*" and rolls it back. The sets:
- a group's description: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html
  ("a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*");
- a rule that names a security group:
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_UserIdGroupPair.html
  ("a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=;{}!$*", no "&");
- a rule that names an address range: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpRange.html
  ("a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*").
"""

from __future__ import annotations

import re

from tests.infra.conftest import SynthesizedStage
from tests.infra.template_queries import resources

GROUP_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}$")
GROUP_PAIR_RULE_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]{0,255}$")
ADDRESS_RULE_DESCRIPTION = GROUP_DESCRIPTION


def rule_descriptions(stage: SynthesizedStage) -> list[tuple[str, str]]:
    """(description, the pattern EC2 checks it against) of every security group and rule in the template."""
    found = []
    for group in resources(stage.template, "AWS::EC2::SecurityGroup").values():
        properties = group["Properties"]
        found.append((properties["GroupDescription"], GROUP_DESCRIPTION.pattern))
        for rule in [*properties.get("SecurityGroupIngress", []), *properties.get("SecurityGroupEgress", [])]:
            if "Description" in rule:
                names_group = "SourceSecurityGroupId" in rule or "DestinationSecurityGroupId" in rule
                pattern = GROUP_PAIR_RULE_DESCRIPTION if names_group else ADDRESS_RULE_DESCRIPTION
                found.append((rule["Description"], pattern.pattern))
    for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        for rule in resources(stage.template, kind).values():
            if "Description" in rule["Properties"]:
                names_group = {"SourceSecurityGroupId", "DestinationSecurityGroupId"} & set(rule["Properties"])
                pattern = GROUP_PAIR_RULE_DESCRIPTION if names_group else ADDRESS_RULE_DESCRIPTION
                found.append((rule["Properties"]["Description"], pattern.pattern))
    return found


def test_every_security_group_description_is_one_ec2_accepts(stage: SynthesizedStage) -> None:
    # Given a stage's template
    descriptions = rule_descriptions(stage)
    # Then EC2 accepts each security group's and each rule's description as it stands
    refused = [description for description, pattern in descriptions if not re.match(pattern, description)]
    assert refused == []


def test_prod_has_security_groups_to_check(stages: dict[str, SynthesizedStage]) -> None:
    # Given prod (interface endpoints: the stack's own security group) - so the test above checks something
    assert rule_descriptions(stages["prod"])

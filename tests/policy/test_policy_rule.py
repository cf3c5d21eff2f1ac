"""The shared rule shell (`rules._rule.rule`): what every rule gets without writing it."""

from types import SimpleNamespace

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policy_builders import INGESTION, UNKNOWN_STR, container, deployment, run_resource, run_stack
from rules._layers import int_setting
from rules._props import UNKNOWN, get
from rules._rule import rule

SCHEMA = {"limit": {"type": "integer", "default": 1}}


def test_a_resource_rule_gets_plain_props_and_its_config():
    seen = []

    def check(res, config):
        seen.append((res.name, get(res.props, "spec", "replicas"), config))
        return ["first", "second"]

    policy = rule("demo", "A demo rule.", check, config=SCHEMA)
    app = deployment("app", INGESTION, [container("c", "1Gi")], replicas=UNKNOWN_STR)
    found = run_resource(policy, app, {"limit": 2})
    assert isinstance(policy, ResourceValidationPolicy)
    assert policy.enforcement_level == EnforcementLevel.MANDATORY
    assert policy.config_schema.properties == SCHEMA
    # An unknown read through the SDK's proxy would have raised; the check sees the UNKNOWN marker.
    assert seen == [("app", UNKNOWN, {"limit": 2})]
    assert found == [("first", None), ("second", None)]


def test_a_stack_rule_gets_every_resource_and_may_blame_one():
    resources = [deployment(name, INGESTION, [container("c", "1Gi")]) for name in ("a", "b")]

    def check(resources, config):
        yield "about the stack"
        yield SimpleNamespace(message="about b", urn=resources[1].urn)

    policy = rule("demo", "A demo rule.", check, config=SCHEMA, stack=True, level=EnforcementLevel.ADVISORY)
    assert isinstance(policy, StackValidationPolicy)
    assert policy.enforcement_level == EnforcementLevel.ADVISORY
    assert run_stack(policy, resources) == [("about the stack", None), ("about b", resources[1].urn)]


def test_a_broken_config_is_one_readable_violation():
    def check(resources, config):
        return [f"limit {int_setting(config, 'limit', 1)}"]

    policy = rule("demo", "A demo rule.", check, config=SCHEMA, stack=True)
    assert run_stack(policy, [], {"limit": -1}) == [
        ("invalid configuration for policy 'demo': limit must be a non-negative integer, got -1", None)
    ]
    assert run_stack(policy, [], None) == [("limit 1", None)]


def test_other_errors_are_not_swallowed():
    def check(res, config):
        raise KeyError("a bug, not a config problem")

    policy = rule("demo", "A demo rule.", check, config=SCHEMA)
    # A bug in a check must surface (the SDK reports it), not pass for a config problem.
    with pytest.raises(KeyError):
        run_resource(policy, deployment("app", INGESTION, [container("c", "1Gi")]))

"""The pack over the resources the real program registers (captured under Pulumi mocks), and over
config variants that pass the program's own validation but break a guardrail — the pull requests
the pack exists to stop."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, StackValidationPolicy
from policy_builders import Violations, resource, resource_args
from rules import all_policies
from rules.memory_budget import layer_memory_report
from pulumi_policy import StackValidationArgs

from tests.program import run_program


def as_policy_resources(program):
    # The engine hands policies Kubernetes objects with apiVersion/kind; mocks record inputs only.
    converted = []
    for r in program.resources:
        props = dict(r.inputs)
        if r.kind:
            props.setdefault("kind", r.kind)
            props.setdefault("apiVersion", r.type.split(":")[1].removeprefix("core/"))
        converted.append(resource(r.type, r.name, props))
    return converted


def violations(program, mandatory_only=True) -> dict[str, Violations]:
    resources = as_policy_resources(program)
    found: dict[str, Violations] = {}
    for policy in all_policies():
        if mandatory_only and policy.enforcement_level != EnforcementLevel.MANDATORY:
            continue
        recorded = Violations()
        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(resources, None), recorded)
        else:
            for res in resources:
                policy.validate(resource_args(res), recorded)
        if recorded:
            found[policy.name] = recorded
    return found


def test_the_program_passes_every_mandatory_rule():
    program = run_program()
    assert violations(program) == {}
    reports = layer_memory_report(as_policy_resources(program))
    # The pack's independent count (bytes) agrees with what the program reports it allocated.
    assert reports["ingestion"].total == program.outputs["ingestionMemory"]["limitsMib"] * 2**20


def test_a_fourth_broker_fails_the_budget_even_when_the_stack_raises_its_own():
    # The stack config's budget is raised so the program accepts it; the pack's 6Gi still holds.
    program = run_program({"ingestion": {"memoryBudget": "7Gi", "storageBudget": "20Gi",
                                         "kafka": {"brokers": 4}}})
    found = violations(program)
    assert "memory-budget" in found
    text = found["memory-budget"].text
    assert "6824Mi" in text and "6Gi" in text and "kafka" in text
    assert "quota-matches-budget" in found  # the namespace quota now exceeds 6Gi too
    assert "storage-budget" in found  # a fourth 3413Mi volume passes 15Gi


def test_a_bigger_heap_that_the_program_allows_still_needs_to_fit_the_pack_share():
    program = run_program({"ingestion": {"kafkaConnect": {"heap": "1900Mi"}}})
    found = violations(program)
    assert list(found) == ["jvm-heap-fits"]
    assert "kafka-connect" in found["jvm-heap-fits"].text

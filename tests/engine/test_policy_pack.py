"""The policy pack under the real engine: `pulumi preview --policy-pack policy` with the real engine, the pack
started by the language host the way CI and users start it."""

import json
import re

import pytest

from tests.engine.local_stack import ROOT, LocalStack

pytestmark = pytest.mark.engine

PACK = "datapipe-guardrails@v0.1.0"

# A pull request that raises the program's own budgets (so the program's config check lets it
# through) and adds a fourth broker: the pack, still at the product description's 6Gi / 15Gi, must stop it.
OVER_BUDGET = {
    "datapipe:ingestion.memoryBudget": "7Gi",
    "datapipe:ingestion.storageBudget": "20Gi",
    "datapipe:ingestion.kafka.brokers": "4",
}


# The Spark operator through helm.v4.Chart with a local chart (no chart repository is reachable
# here): tests/engine/charts/spark-operator-standin renders the Deployments the real chart does.
OPERATOR_CHART = {
    "datapipe:batch.sparkOperator.enabled": "true",
    "datapipe:batch.sparkOperator.chartPath": str(ROOT / "tests/engine/charts/spark-operator-standin"),
}


def row(*cells: str) -> re.Pattern:
    """A budget-table row: the cells in order, separated by any run of spaces."""
    return re.compile(r"^\s*" + r"\s+".join(map(re.escape, cells)) + r"\s*$", re.M)


def policy_section(output: str) -> str:
    assert "Policies:" in output, f"no policy report in the output:\n{output[-4000:]}"
    return output.split("Policies:", 1)[1].split("Diagnostics:", 1)[0]


@pytest.fixture(scope="module")
def over_budget(tmp_path_factory):
    stack = LocalStack(tmp_path_factory.mktemp("over-budget")).init()
    for path, value in OVER_BUDGET.items():
        stack.set_config_path(path, value)
    return stack


def test_local_stack_passes_the_pack_with_a_headroom_warning(tmp_path):
    stack = LocalStack(tmp_path).init()
    result = stack.pulumi("preview", "--policy-pack", "policy")
    report = policy_section(result.output)
    assert PACK in report
    assert "[mandatory]" not in report
    # 6142Mi of 6144Mi is above the 90% headroom share: advisory only, with the table.
    assert "[advisory]  memory-budget-headroom" in report
    assert "memory limits total 6142Mi against a budget of 6Gi" in report
    assert row("kafka", "StatefulSet", "3", "682Mi", "2046Mi").search(report)
    assert row("layer total", "6142Mi").search(report)
    assert row("budget", "6144Mi").search(report)


def test_over_budget_variant_fails_preview_with_the_budget_tables(over_budget):
    result = over_budget.pulumi("preview", "--policy-pack", "policy", check=False)
    assert result.returncode != 0
    report = policy_section(result.output)
    assert "[mandatory]  memory-budget  " in report
    assert "memory limits total 6824Mi against a budget of 6Gi — over budget by 680Mi" in report
    assert row("kafka", "StatefulSet", "4", "682Mi", "2728Mi").search(report)
    assert row("layer total", "6824Mi").search(report)
    assert row("budget", "6144Mi").search(report)
    # The quota the program raised with it, and the fourth broker's volume, fail too.
    assert "allows limits.memory=7168Mi, more than layer 'ingestion' budget of 6144Mi" in report
    assert "volume claims total 18772Mi, over the 15Gi storage allocation by 3412Mi" in report
    # Without the pack the same change previews fine: the failure is the pack's.
    assert over_budget.pulumi("preview").returncode == 0


def test_up_with_the_pack_stops_before_rendering_anything(over_budget):
    result = over_budget.pulumi("up", "--yes", "--policy-pack", "policy", check=False)
    assert result.returncode != 0
    assert "[mandatory]  memory-budget  " in result.output
    assert over_budget.resources() == []
    assert not over_budget.rendered.exists() or over_budget.rendered_documents() == []


def test_raising_the_budget_in_pack_config_lets_the_change_through(over_budget, tmp_path):
    layers = {"ingestion": {"memoryBudget": "7Gi", "storageBudget": "20Gi"}, "batch": {}}
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({name: {"layers": layers} for name in (
        "memory-budget", "memory-budget-headroom", "quota-matches-budget", "storage-budget")}))
    result = over_budget.pulumi("preview", "--policy-pack", "policy", "--policy-pack-config", str(config))
    report = policy_section(result.output)
    assert "[mandatory]" not in report
    # 6824Mi of 7Gi is 95%: still above the headroom share, so the advisory remains.
    assert "memory limits total 6824Mi against a budget of 7Gi" in report


def test_helm_chart_pods_and_spark_applications_count_against_the_budget(tmp_path):
    stack = LocalStack(tmp_path).init()
    # Three 7Gi operator controllers beside the SparkPi smoke job: the program's own budget is
    # raised to let them through, so only the pack's count of what the engine registers (the
    # chart's rendered Deployments, the SparkApplication's driver and executors) can stop it.
    variant = {**OPERATOR_CHART, "datapipe:batch.spark.smokeJob.enabled": "true",
               "datapipe:batch.memoryBudget": "40Gi",
               "datapipe:batch.sparkOperator.controller.memory": "7Gi",
               "datapipe:batch.sparkOperator.controller.replicas": "3"}
    for path, value in variant.items():
        stack.set_config_path(path, value)
    result = stack.pulumi("preview", "--policy-pack", "policy", check=False)
    assert result.returncode != 0
    report = policy_section(result.output)
    # The program's own accounting (outputs.batchMemory) arrives at the same 36274Mi.
    assert "Layer 'batch' (namespace batch-analytics): memory limits total 36274Mi against a budget of 18Gi" in report
    assert row("spark-operator-controller", "Deployment", "3", "7168Mi", "21504Mi").search(report)
    assert row("spark-operator-webhook", "Deployment", "1", "256Mi", "256Mi").search(report)
    # Spark's default overhead: driver 3g + 384Mi, executors 4g + 10%.
    assert row("spark-pi executor", "SparkApplication", "2", "4505Mi", "9010Mi").search(report)
    assert row("spark-pi driver", "SparkApplication", "1", "3456Mi", "3456Mi").search(report)
    assert row("prometheus", "Deployment", "1", "512Mi", "512Mi").search(report)
    assert row("layer total", "36274Mi").search(report)
    assert row("budget", "18432Mi").search(report)

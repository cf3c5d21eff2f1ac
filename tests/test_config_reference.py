"""The README's configuration reference is generated from the config models and kept current."""

import importlib.util
import inspect
from pathlib import Path

import pytest
from pydantic import BaseModel

import components.batch.config
import components.cloud.config
import components.config
import components.config_types
import components.ingestion.config

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("config_reference", ROOT / "scripts" / "config_reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

MODULES = (components.config, components.config_types, components.ingestion.config, components.batch.config,
           components.cloud.config)


def config_models() -> list[type[BaseModel]]:
    return [cls for module in MODULES for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseModel) and cls.__module__ == module.__name__]


def test_readme_configuration_reference_is_current():
    problem = reference.check()
    assert problem is None, problem


def test_every_field_of_every_config_model_is_described():
    models = config_models()
    assert len(models) > 30
    undescribed = [f"{model.__name__}.{name}" for model in models
                   for name, field in model.model_fields.items() if not (field.description or "").strip()]
    assert undescribed == []


def test_every_key_a_stack_can_set_is_in_the_reference():
    text = reference.render()
    for key in ("ingestion.kafka.memoryPerBroker", "batch.spark.executor.instances",
                "cloud.aws.rawBucket.lifecycle.archiveAfterDays", "clusters.batch.renderDirectory",
                "cloud.snowflake.dbtUser.rsaPublicKey", "snowflakeDbtPrivateKey"):
        assert f"`{key}`" in text
    # Defaults come from the stack with no config: nested defaults, sizes as quantities.
    assert "| `batch.spark.driver.memory` | size | `3Gi` |" in text
    assert "| `cloud.aws.rawBucket.versioning` | bool | `true` |" in text
    assert "| `ingestion.kafka.clusterId` | string | unset |" in text
    assert "| `ingestion.kafka.bootstrapNodePort` | NodePort | `30092` |" in text


def test_check_names_a_stale_readme_and_the_command_that_fixes_it(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(reference.splice((ROOT / "README.md").read_text(), "| old | table |\n"))
    problem = reference.check(readme)
    assert "stale" in problem and "scripts/config_reference.py" in problem
    assert reference.main(["--check", "--readme", str(readme)]) == 1
    assert reference.main(["--readme", str(readme)]) == 0
    assert reference.check(readme) is None and reference.main(["--check", "--readme", str(readme)]) == 0


def test_only_the_text_between_the_markers_is_replaced():
    readme = f"# Title\nbefore\n{reference.START}\nold\n{reference.END}\nafter\n"
    assert reference.splice(readme, "new\n") == f"# Title\nbefore\n{reference.START}\nnew\n{reference.END}\nafter\n"
    with pytest.raises(ValueError, match="config-reference:start"):
        reference.splice("# no markers\n", "new\n")

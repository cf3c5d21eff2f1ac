import yaml

from components.batch import dbt
from components.batch.config import DbtConfig

TARGET = dbt.DbtTarget(account="ORG-ACCOUNT", user="DATAPIPE_DBT", role="DATAPIPE_TRANSFORMER",
                       database="DATAPIPE", warehouse="DATAPIPE_WH", schema="STAGING")


def test_profile_comes_from_the_snowflake_objects_and_holds_no_secret():
    files = dbt.config_files(TARGET, threads=4)
    output = yaml.safe_load(files["profiles.yml"])["datapipe"]["outputs"]["prod"]
    assert output["type"] == "snowflake" and output["account"] == "ORG-ACCOUNT"
    assert (output["user"], output["role"], output["database"], output["warehouse"], output["schema"]) == (
        "DATAPIPE_DBT", "DATAPIPE_TRANSFORMER", "DATAPIPE", "DATAPIPE_WH", "STAGING")
    # Key-pair login with the key file mounted from a Secret; no password or key in the profile.
    assert output["private_key_path"] == "/var/run/secrets/snowflake/rsa_key.p8"
    assert not {"password", "private_key", "private_key_passphrase"} & set(output)
    assert yaml.safe_load(files["dbt_project.yml"])["profile"] == "datapipe"


def test_runner_is_a_bounded_cronjob_reading_the_key_from_the_secret():
    config_map, cron_job = dbt.manifests(DbtConfig(), "batch-analytics", "batch", {"profiles.yml": "x"})
    assert config_map["kind"] == "ConfigMap" and config_map["data"] == {"profiles.yml": "x"}
    spec = cron_job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert container["command"] == ["dbt", "debug"]
    secret_volume = next(v for v in pod["volumes"] if v["name"] == "credentials")
    assert secret_volume["secret"]["secretName"] == dbt.SECRET_NAME
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert not any("KEY" in e["name"] for e in container["env"])

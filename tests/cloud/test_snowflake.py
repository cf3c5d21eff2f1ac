from components.cloud import snowflake


def grants_of(role, with_stage=True):
    return {(g.target, g.privileges) for g in snowflake.role_grants(with_stage) if g.role == role}


def test_every_role_uses_the_warehouse_and_database():
    for role in ("loader", "transformer", "reporter"):
        targets = {t for t, _ in grants_of(role)}
        assert {("warehouse",), ("database",)} <= targets


def test_least_privilege_per_role():
    loader, transformer, reporter = grants_of("loader"), grants_of("transformer"), grants_of("reporter")
    assert (("schema", "RAW"), ("USAGE", "CREATE TABLE")) in loader
    assert (("stage",), ("USAGE",)) in loader
    assert not any("MARTS" in t or "STAGING" in t for t, _ in loader)
    assert (("future", "TABLES", "RAW"), ("SELECT",)) in transformer
    assert (("schema", "MARTS"), ("USAGE", "CREATE TABLE", "CREATE VIEW")) in transformer
    assert not any("CREATE" in " ".join(p) for t, p in transformer if "RAW" in t)
    assert {t for t, _ in reporter} == {("warehouse",), ("database",), ("schema", "MARTS"),
                                        ("future", "TABLES", "MARTS"), ("future", "VIEWS", "MARTS")}
    assert all(p in (("USAGE",), ("SELECT",)) for _, p in reporter)


def test_no_stage_grant_without_a_stage():
    assert not any(t == ("stage",) for t, _ in grants_of("loader", with_stage=False))


def test_grant_keys_are_unique_resource_names():
    keys = [g.key for g in snowflake.role_grants(True)]
    assert len(keys) == len(set(keys))


def test_trust_policy_names_snowflakes_user_and_external_id():
    policy = snowflake.trust_policy("arn:aws:iam::999:user/sf", "EXT_ID")
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::999:user/sf"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "EXT_ID"}}


def test_stage_role_reads_only_the_sink_prefix():
    policy = snowflake.stage_read_policy("arn:aws:s3:::raw", "cdc")
    read, listing = policy["Statement"]
    assert read["Resource"] == ["arn:aws:s3:::raw/cdc/*"] and set(read["Action"]) == {"s3:GetObject",
                                                                                      "s3:GetObjectVersion"}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["cdc/*"]}}
    assert snowflake.stage_url("raw", "cdc") == "s3://raw/cdc/"

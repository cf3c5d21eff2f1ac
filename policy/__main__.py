"""Entry point of the datapipe-guardrails policy pack (`pulumi preview --policy-pack policy`).

The CLI starts it in one of two ways, both with the interpreter of the `virtualenv` option
in PulumiPolicy.yaml: through the Python language host's RunPlugin (`python <policy dir>
<engine>`, working directory = the Pulumi project) or, without a language host, through
its `pulumi-analyzer-policy-python` script (`python -m pulumi.policy <engine> .` inside
policy/). Hence paths here are taken from __file__, never from the working directory.
Constructing the PolicyPack starts the gRPC analyzer server and blocks; tests import
`rules.all_policies()` instead.
"""

import os
import sys

from pulumi_policy import EnforcementLevel, PolicyPack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rules import all_policies  # noqa: E402  (needs the path above when run from elsewhere)
from rules._keep_secrets import install as keep_secret_marks  # noqa: E402

# Without this the SDK hands rules plaintext for values the program marked secret.
keep_secret_marks()

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"), encoding="utf-8") as readme:
    README = readme.read()

PolicyPack(
    name="datapipe-guardrails",
    description="Memory/storage budgets and safety rules for the DataPipe ingestion and batch layers.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=all_policies(),
    readme=README,
)

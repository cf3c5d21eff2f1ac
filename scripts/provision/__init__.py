"""Provisioning of the tools and services the tests need, outside the repo and any virtualenv.

Run with the system python3 (standard library only), through the thin wrappers
scripts/toolchain.sh (``python3 -m provision.toolchain``) and scripts/services.sh
(``python3 -m provision.services``):

- ``engine``: the cache / fingerprint / lock / timed-build / env-file machinery both share;
- ``toolchain``: the Pulumi CLI, its Python language host and the kubernetes/random plugins;
- ``services``: PostgreSQL, Kafka + Connect + Debezium, Spark and SeaweedFS.

Checked-in resources: ``poms/*.xml`` (what Maven resolves), ``log4j.properties`` (the Kafka
wrappers' logging) and ``templates/`` (the generated wrapper scripts).
"""

import os

# The wrappers put scripts/ on PYTHONPATH to find this package; the tools we start (go, mvn, java,
# pulumi and the Python programs it runs) must not inherit that entry.
_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
if _entries and _entries[0] and os.path.abspath(_entries[0]) == _here:
    _rest = os.pathsep.join(_entries[1:])
    if _rest:
        os.environ["PYTHONPATH"] = _rest
    else:
        del os.environ["PYTHONPATH"]

"""open-to-the-internet (advisory): a NetworkPolicy that admits 0.0.0.0/0 or ::/0 is reported."""

import pytest

from policy_builders import resource, run_resource
from rules.open_to_the_internet import NETWORK_POLICY, open_to_the_internet
from test_policy_program import violations

from tests.program import run_program


def network_policy(*cidrs: str, ports=(5432,)):
    return resource(NETWORK_POLICY, "np", {"metadata": {"name": "allow-host-to-postgres"}, "spec": {
        "podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": c}} for c in cidrs],
                                       "ports": [{"protocol": "TCP", "port": p} for p in ports]}]}})


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", " 0.0.0.0/0", "1.2.3.4/0"])
def test_every_address_is_reported_with_its_ports(cidr):
    found = run_resource(open_to_the_internet, network_policy("10.0.0.0/8", cidr)).messages
    assert len(found) == 1 and "spec.ingress[0].from[1]" in found[0] and "port(s) 5432" in found[0]


@pytest.mark.parametrize("cidrs", [("10.0.0.0/8", "172.16.0.0/12"), ("203.0.113.7/32",), ("128.0.0.0/1",)])
def test_narrower_sources_pass(cidrs):
    assert run_resource(open_to_the_internet, network_policy(*cidrs)).messages == []


def test_the_program_warns_only_when_host_access_is_opened_to_everyone():
    assert "open-to-the-internet" not in violations(run_program(), mandatory_only=False)
    opened = violations(run_program({"ingestion": {"hostAccessCidrs": ["0.0.0.0/0"]}}), mandatory_only=False)
    messages = opened["open-to-the-internet"].messages
    assert messages and all("0.0.0.0/0 admits every address" in m for m in messages)

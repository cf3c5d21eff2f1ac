"""open-to-the-internet (advisory): no NetworkPolicy admits every address.

The layers' NodePorts (PostgreSQL, Kafka, the REST APIs) are reached through NetworkPolicy rules
whose sources are `hostAccessCidrs`. A source ipBlock of prefix length 0 (`0.0.0.0/0`, `::/0`)
admits the whole Internet wherever the node is reachable; the program's default is the private
networks. Advisory: a stack may mean it (a load balancer in front, a lab network), and says so by
accepting the warning.
"""

from __future__ import annotations

import ipaddress

from ._layers import ResourceView
from ._props import get_list, get_str, reveal
from ._rule import Config, rule
from pulumi_policy import EnforcementLevel

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def open_sources(props: dict) -> list[str]:
    """`spec.ingress[i].from[j]` ipBlocks of prefix length 0, as findings."""
    found = []
    for i, rule_ in enumerate(get_list(props, "spec", "ingress")):
        for j, peer in enumerate(get_list(rule_, "from")):
            cidr = reveal(get_str(peer, "ipBlock", "cidr"))
            if not isinstance(cidr, str):
                continue
            try:
                network = ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                continue  # the API server refuses it; nothing to warn about here
            if network.prefixlen == 0:
                ports = [str(reveal(p.get("port"))) for p in get_list(rule_, "ports") if isinstance(p, dict)]
                on = f" on port(s) {', '.join(ports)}" if ports else " on every port"
                found.append(f"spec.ingress[{i}].from[{j}]: ipBlock {cidr} admits every address{on}; "
                             "narrow hostAccessCidrs to your clients' networks")
    return found


def check(res: ResourceView, config: Config) -> list[str]:
    return open_sources(res.props) if res.resource_type == NETWORK_POLICY else []


open_to_the_internet = rule(
    "open-to-the-internet",
    "No NetworkPolicy admits every address (an ipBlock of 0.0.0.0/0 or ::/0) to the layers' pods.",
    check,
    config={},
    level=EnforcementLevel.ADVISORY,
)

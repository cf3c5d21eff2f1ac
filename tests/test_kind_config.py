"""The committed Kind configs expose exactly the ports the stack config advertises."""

from pathlib import Path

import yaml

from components.config import parse_stack_config

KIND = Path(__file__).resolve().parent.parent / "kind"


def port_map(path: Path) -> dict[int, int]:
    cluster = yaml.safe_load(path.read_text())
    control_plane = next(n for n in cluster["nodes"] if n["role"] == "control-plane")
    assert [n["role"] for n in cluster["nodes"]].count("worker") == 2
    return {m["containerPort"]: m["hostPort"] for m in control_plane["extraPortMappings"]}


def test_ingestion_cluster_maps_every_node_port_to_the_advertised_host_port():
    ingestion = parse_stack_config({}).ingestion
    ports = port_map(KIND / "ingestion-cluster.yaml")
    assert ports[ingestion.postgres.node_port] == ingestion.postgres.host_port == 5432
    assert ports[ingestion.kafka.bootstrap_node_port] == ingestion.kafka.bootstrap_host_port == 9092
    assert ports[ingestion.schema_registry.node_port] == ingestion.schema_registry.host_port == 8081
    assert ports[ingestion.kafka_connect.node_port] == ingestion.kafka_connect.host_port == 8083
    for port in ingestion.kafka.broker_node_ports:
        assert ports[port] == port  # brokers advertise their NodePort to host clients


def test_ingestion_cluster_has_host_ports_for_two_more_brokers():
    """Kind maps ports only when the cluster is created: brokers added later need them already."""
    five = parse_stack_config({"ingestion": {"kafka": {"brokers": 5}, "memoryBudget": "8Gi",
                                                "storageBudget": "30Gi"}}).ingestion
    ports = port_map(KIND / "ingestion-cluster.yaml")
    assert all(ports.get(port) == port for port in five.kafka.broker_node_ports)


def test_every_host_port_listens_on_loopback_only():
    """Kind binds host ports on every interface unless told otherwise: the platform's ports
    (PostgreSQL, Kafka, the REST APIs) would be reachable from the host's network."""
    for path in sorted(KIND.glob("*.yaml")):
        cluster = yaml.safe_load(path.read_text())
        mappings = [m for n in cluster["nodes"] for m in n.get("extraPortMappings", [])]
        assert mappings and all(m.get("listenAddress") == "127.0.0.1" for m in mappings), path.name


def test_batch_cluster_maps_the_product_description_ports():
    assert port_map(KIND / "batch-cluster.yaml") == {30040: 4040, 30041: 18080, 30042: 8888, 30043: 8080, 30044: 9090}

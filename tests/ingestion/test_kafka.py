from components.ingestion import kafka
from components.ingestion.config import KafkaConfig, TopicsConfig
from tests.shell import assert_valid_sh

ENDPOINTS = kafka.BrokerEndpoints(("k0", "k1", "k2"), "localhost", (30093, 30094, 30095))


def test_kraft_combined_roles_and_voters():
    props = kafka.broker_properties(1, KafkaConfig(), TopicsConfig(), ENDPOINTS)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "0@k0:9093,1@k1:9093,2@k2:9093"
    assert props["advertised.listeners"] == "INTERNAL://k1:9092,EXTERNAL://localhost:30094"
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert props["inter.broker.listener.name"] == "INTERNAL"


def test_durability_defaults():
    props = kafka.broker_properties(0, KafkaConfig(), TopicsConfig(), ENDPOINTS)
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "3"


def test_single_broker_keeps_internal_topics_creatable():
    config = KafkaConfig(brokers=1)
    topics = TopicsConfig(replication_factor=1, min_insync_replicas=1)
    props = kafka.broker_properties(0, config, topics, kafka.BrokerEndpoints(("k0",), "localhost", (30093,)))
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"


def test_cluster_id_is_stable_per_stack_and_valid():
    first = kafka.default_cluster_id("datapipe", "dev")
    assert first == kafka.default_cluster_id("datapipe", "dev")
    assert first != kafka.default_cluster_id("datapipe", "prod")
    assert len(first) == 22 and "=" not in first


def test_manifests_statefulset_services_and_pdb():
    manifests = kafka.manifests(KafkaConfig(), TopicsConfig(), "data-ingestion", "ingestion", "localhost", "abc")
    by_kind = {}
    for m in manifests:
        by_kind.setdefault(m["kind"], []).append(m)
    statefulset = by_kind["StatefulSet"][0]
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["KAFKA_HEAP_OPTS"] == "-Xms341m -Xmx341m" and env["KAFKA_CLUSTER_ID"] == "abc"
    node_ports = sorted(p["nodePort"] for s in by_kind["Service"] for p in s["spec"]["ports"] if "nodePort" in p)
    assert node_ports == [30092, 30093, 30094, 30095]
    headless = next(s for s in by_kind["Service"] if s["metadata"]["name"] == "kafka-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    assert by_kind["PodDisruptionBudget"][0]["spec"]["maxUnavailable"] == 1
    configs = by_kind["ConfigMap"][0]["data"]
    assert sorted(configs) == ["broker-0.properties", "broker-1.properties", "broker-2.properties"]
    assert "node.id=2\n" in configs["broker-2.properties"]
    assert_valid_sh(kafka.START_SCRIPT)


def endpoints(brokers: int) -> kafka.BrokerEndpoints:
    return kafka.BrokerEndpoints(tuple(f"k{i}" for i in range(brokers)), "localhost",
                                 tuple(30093 + i for i in range(brokers)))


def test_the_controller_quorum_is_the_first_three_brokers_whatever_the_count():
    for brokers, roles in ((1, ["broker,controller"]), (3, ["broker,controller"] * 3),
                           (5, ["broker,controller"] * 3 + ["broker"] * 2)):
        config = KafkaConfig(brokers=brokers)
        props = [kafka.broker_properties(i, config, TopicsConfig(replication_factor=1), endpoints(brokers))
                 for i in range(brokers)]
        assert [p["process.roles"] for p in props] == roles
        voters = ",".join(f"{i}@k{i}:9093" for i in range(min(3, brokers)))
        assert {p["controller.quorum.voters"] for p in props} == {voters}


def test_a_broker_only_node_has_no_controller_listener():
    props = kafka.broker_properties(3, KafkaConfig(brokers=4), TopicsConfig(), endpoints(4))
    assert props["listeners"] == "INTERNAL://:9092,EXTERNAL://:9094"
    assert props["controller.listener.names"] == "CONTROLLER"  # to find the quorum
    assert props["advertised.listeners"] == "INTERNAL://k3:9092,EXTERNAL://localhost:30096"


def test_adding_a_broker_leaves_the_existing_brokers_and_their_pods_untouched():
    """A formatted KRaft cluster cannot change its voters: going from 3 to 4 brokers must not
    rewrite brokers 0-2's properties, nor roll their pods (the template's config hash)."""
    def rendered(brokers: int):
        manifests = kafka.manifests(KafkaConfig(brokers=brokers), TopicsConfig(), "ns", "ingestion", "localhost",
                                    "AAAAAAAAAAAAAAAAAAAAAA")
        data = next(m for m in manifests if m["kind"] == "ConfigMap")["data"]
        template = next(m for m in manifests if m["kind"] == "StatefulSet")["spec"]["template"]
        return data, template
    three, three_pods = rendered(3)
    four, four_pods = rendered(4)
    assert {k: four[k] for k in three} == three
    assert "process.roles=broker\n" in four["broker-3.properties"]
    assert four_pods == three_pods


def test_liveness_probes_a_port_every_node_listens_on():
    (statefulset,) = [m for m in kafka.manifests(KafkaConfig(brokers=4), TopicsConfig(), "ns", "ingestion",
                                                 "localhost", "AAAAAAAAAAAAAAAAAAAAAA") if m["kind"] == "StatefulSet"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["tcpSocket"]["port"] == kafka.EXTERNAL_PORT
    assert container["readinessProbe"]["tcpSocket"]["port"] == kafka.INTERNAL_PORT

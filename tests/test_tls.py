"""components/tls.py without the engine: the certificates verify (cryptography's RFC 5280 verifier, and
a real TLS handshake through Python's `ssl`), Java reads the PKCS#12 files (keytool), the provider
replaces on every input change and on nothing else, check() names bad inputs, and the program's
mocks (tests/program.py) create real certificates with the right outputs secret."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components import tls
from tests.program import run_program

SANS = ["schema-registry", "schema-registry.data-ingestion.svc.cluster.local", "localhost"]
IPS = ["127.0.0.1"]
PRIVATE_KEY_HEADER = "-----BEGIN PRIVATE KEY-----"


@pytest.fixture(scope="module")
def ca() -> tuple[str, str]:
    return tls.new_ca("datapipe-test-ca", 30)


@pytest.fixture(scope="module")
def leaf(ca) -> tuple[str, str]:
    return tls.issue(*ca, "schema-registry", SANS, IPS, 10)


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


# ---- the certificates ----------------------------------------------------------------------------------------
def test_ca_is_a_ca_for_leaves_only(ca):
    cert = load(ca[0])
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.issuer == cert.subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=30) + tls.CLOCK_SKEW


def test_leaf_has_the_sans_usages_and_identifiers_strict_verifiers_want(ca, leaf):
    cert, ca_cert = load(leaf[0]), load(ca[0])
    cert.verify_directly_issued_by(ca_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == SANS
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    # The leaf PEM is the leaf alone; chain_pem appends the CA.
    assert leaf[0].count("BEGIN CERTIFICATE") == 1
    assert tls.chain_pem(leaf[0], ca[0]) == leaf[0] + ca[0]


def test_rfc5280_verifier_accepts_the_sans_and_refuses_other_names(ca, leaf):
    store = Store([load(ca[0])])
    for name in (x509.DNSName("schema-registry"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = PolicyBuilder().store(store).build_server_verifier(name).verify(load(leaf[0]), [])
        assert [c.subject for c in chain] == [load(leaf[0]).subject, load(ca[0]).subject]
    with pytest.raises(VerificationError, match="subjectAltName"):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("kafka")).verify(load(leaf[0]), [])
    assert PolicyBuilder().store(store).build_client_verifier().verify(load(leaf[0]), []).subjects


def test_keys_are_unencrypted_pkcs8_p256(ca, leaf):
    for pem in (ca[1], leaf[1]):
        assert pem.startswith(PRIVATE_KEY_HEADER + "\n")
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert serialization.load_pem_private_key(leaf[1].encode(), None).public_key() == load(leaf[0]).public_key()


def test_a_leaf_never_outlives_its_ca_and_needs_the_cas_own_key(ca):
    cert, _ = tls.issue(*ca, "long-lived", ["x"], [], 10_000)
    assert load(cert).not_valid_after_utc == load(ca[0]).not_valid_after_utc
    other_ca = tls.new_ca("other", 30)
    with pytest.raises(ValueError, match="does not belong"):
        tls.issue(ca[0], other_ca[1], "x", ["x"], [], 10)


def test_a_client_only_leaf_has_no_san_extension(ca):
    cert, _ = tls.issue(*ca, "kafka-connect", [], [], 10)
    with pytest.raises(x509.ExtensionNotFound):
        load(cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)


# ---- a real TLS handshake (Python's ssl = OpenSSL) -------------------------------------------------------------
def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext, server_hostname: str) -> bytes:
    """One connection on 127.0.0.1: the server sends b"ok" after the handshake; returns what the client read."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server_error: list[BaseException] = []

    def serve():
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as tls_connection:
                tls_connection.sendall(b"ok")
        except (ssl.SSLError, OSError) as error:   # the client gave up: its error is the one asserted
            server_error.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_context.wrap_socket(raw, server_hostname=server_hostname) as connection:
                return connection.recv(2)
    finally:
        thread.join(10)
        listener.close()


def contexts(tmp_path, ca, leaf, client_leaf=None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(write(tmp_path, "server.pem", leaf[0]), write(tmp_path, "server.key", leaf[1]))
    client = ssl.create_default_context(cafile=write(tmp_path, "ca.pem", ca[0]))  # trusts only our CA
    client.verify_flags |= ssl.VERIFY_X509_STRICT   # Python 3.13's default: wants the AKI, among others
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    if client_leaf is not None:  # mutual TLS: the server asks for a certificate signed by the CA
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(str(tmp_path / "ca.pem"))
        client.load_cert_chain(write(tmp_path, "client.pem", client_leaf[0]),
                               write(tmp_path, "client.key", client_leaf[1]))
    return server, client


@pytest.mark.parametrize("hostname", ["schema-registry", "localhost", "127.0.0.1"])
def test_tls_handshake_succeeds_for_a_san(tmp_path, ca, leaf, hostname):
    assert handshake(*contexts(tmp_path, ca, leaf), hostname) == b"ok"


def test_tls_handshake_fails_for_a_name_not_in_the_sans(tmp_path, ca, leaf):
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(*contexts(tmp_path, ca, leaf), "kafka")


def test_tls_handshake_fails_against_another_ca(tmp_path, leaf):
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        handshake(*contexts(tmp_path, tls.new_ca("someone-else", 30), leaf), "schema-registry")


def test_mutual_tls_with_a_client_leaf(tmp_path, ca, leaf):
    client_leaf = tls.issue(*ca, "kafka-connect", [], [], 10)
    assert handshake(*contexts(tmp_path, ca, leaf, client_leaf), "schema-registry") == b"ok"


# ---- Java reads the PKCS#12 files (keytool: JDK 17) ------------------------------------------------------------
def keytool(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("keytool")
    if exe is None:
        pytest.fail("keytool (JDK 17) is not on PATH: these tests prove Java reads the PKCS#12 files; install "
                    "openjdk-17-jdk-headless (.ci/run does)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def provider_outputs():
    """The providers' create() outputs: the files as Kubernetes Secrets would get them (base64)."""
    ca_outs = tls._CertificateAuthorityProvider().create(
        {"commonName": "datapipe-ca", "rotation": 0, "validDays": 30}).outs
    leaf_outs = tls._CertificateProvider().create({
        "caCertPem": ca_outs["certPem"], "caKeyPem": ca_outs["keyPem"], "commonName": "schema-registry",
        "dnsNames": SANS, "ipAddresses": IPS, "rotation": 0, "validDays": 10}).outs
    return ca_outs, leaf_outs


def test_java_reads_the_keystore_as_a_private_key_entry_with_its_chain(tmp_path, provider_outputs):
    _, leaf_outs = provider_outputs
    store = tmp_path / "keystore.p12"
    store.write_bytes(base64.b64decode(leaf_outs["keystoreP12B64"]))
    listed = keytool("-list", "-v", "-keystore", str(store), "-storetype", "PKCS12",
                     "-storepass", leaf_outs["keystorePassword"])
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "Your keystore contains 1 entry" in listed.stdout
    assert "Alias name: schema-registry" in listed.stdout
    assert "Entry type: PrivateKeyEntry" in listed.stdout
    assert "Certificate chain length: 2" in listed.stdout
    assert "Issuer: CN=datapipe-ca" in listed.stdout
    wrong = keytool("-list", "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "not-the-password")
    assert wrong.returncode != 0


def test_java_reads_the_truststore_as_a_trusted_certificate(tmp_path, provider_outputs):
    ca_outs, _ = provider_outputs
    store = tmp_path / "truststore.p12"
    store.write_bytes(base64.b64decode(ca_outs["truststoreP12B64"]))
    # Unencrypted, but cryptography MACs it with the empty password: "" is the password to give
    # (ssl.truststore.password empty, or unset: Java then skips the integrity check).
    listed = keytool("-list", "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "Your keystore contains 1 entry" in listed.stdout
    assert "trustedCertEntry" in listed.stdout
    other = keytool("-list", "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit")
    assert other.returncode != 0 and "Integrity check failed" in other.stdout + other.stderr


# ---- the provider: check, diff, create -------------------------------------------------------------------------
def ca_inputs(**changes) -> dict:
    return {"__provider": "serialized", "commonName": "datapipe-ca", "rotation": 0, "validDays": 3650} | changes


def leaf_inputs(ca_outs: dict, **changes) -> dict:
    return {"__provider": "serialized", "caCertPem": ca_outs["certPem"], "caKeyPem": ca_outs["keyPem"],
            "commonName": "schema-registry", "dnsNames": SANS, "ipAddresses": IPS, "rotation": 0,
            "validDays": 825} | changes


def stored(outs: dict) -> dict:
    """The outputs as the engine hands them back to diff() as `olds` (with the provider blob)."""
    return {"__provider": "serialized", **outs}


def test_diff_of_unchanged_inputs_changes_nothing(provider_outputs):
    ca_outs, leaf_outs = provider_outputs
    ca_provider, leaf_provider = tls._CertificateAuthorityProvider(), tls._CertificateProvider()
    no_change = ca_provider.diff("id", stored(ca_outs), ca_inputs(commonName="datapipe-ca", validDays=30))
    assert (no_change.changes, no_change.replaces) == (False, [])
    leaf_news = leaf_inputs(ca_outs, validDays=10)
    no_change = leaf_provider.diff("id", stored(leaf_outs), leaf_news)
    assert (no_change.changes, no_change.replaces) == (False, [])
    # Numbers arrive as floats; a secret may still be wrapped; a new provider blob is no change.
    wrapped = {rpc._special_sig_key: rpc._special_secret_sig, "value": ca_outs["certPem"]}
    same = leaf_news | {"rotation": 0.0, "validDays": 10.0, "caCertPem": wrapped, "__provider": "other"}
    assert leaf_provider.diff("id", stored(leaf_outs), same).changes is False
    # The CA key is not compared (it only changes with the CA certificate) and not stored in the leaf.
    assert "caKeyPem" not in leaf_outs
    assert leaf_provider.diff("id", stored(leaf_outs), leaf_news | {"caKeyPem": "other"}).changes is False


def test_rotation_and_every_other_input_change_replace(provider_outputs):
    ca_outs, leaf_outs = provider_outputs
    ca_news = ca_inputs(commonName="datapipe-ca", validDays=30)
    rotated = tls._CertificateAuthorityProvider().diff("id", stored(ca_outs), ca_news | {"rotation": 1})
    assert (rotated.changes, rotated.replaces, rotated.delete_before_replace) == (True, ["rotation"], False)
    leaf_provider, leaf_news = tls._CertificateProvider(), leaf_inputs(ca_outs, validDays=10)
    for key, value in {"caCertPem": tls.new_ca("new", 30)[0], "dnsNames": SANS[:1], "ipAddresses": [],
                       "commonName": "other", "rotation": 1, "validDays": 11}.items():
        diff = leaf_provider.diff("id", stored(leaf_outs), leaf_news | {key: value})
        assert (diff.changes, diff.replaces, diff.delete_before_replace) == (True, [key], False)
    # In a preview, a CA being replaced has no certificate yet: the leaf will be replaced too.
    for placeholder in (Unknown(), rpc.UNKNOWN):   # as the provider gets it; as it crosses the wire
        unknown = leaf_provider.diff("id", stored(leaf_outs), leaf_news | {"caCertPem": placeholder})
        assert unknown.replaces == ["caCertPem"]


def test_create_outputs_echo_the_inputs_and_a_fresh_password_each_time(provider_outputs):
    ca_outs, leaf_outs = provider_outputs
    assert set(ca_outs) == {"commonName", "rotation", "validDays", "certPem", "keyPem", "truststoreP12B64"}
    assert set(leaf_outs) == {"caCertPem", "commonName", "dnsNames", "ipAddresses", "rotation", "validDays",
                              "certPem", "keyPem", "keystoreP12B64", "keystorePassword"}
    again = tls._CertificateProvider().create(leaf_inputs(ca_outs)).outs
    assert again["keystorePassword"] != leaf_outs["keystorePassword"] and len(again["keystorePassword"]) >= 32


@pytest.mark.parametrize("change, prop, reason", [
    ({"commonName": " "}, "commonName", "not a common name"),
    ({"commonName": "x" * 65}, "commonName", "1-64 characters"),
    ({"dnsNames": ["ok.example", "bad_name"]}, "dnsNames[1]", "'bad_name' is not a DNS name"),
    ({"dnsNames": ["10.0.0.1"]}, "dnsNames[0]", "is an IP address: put it in ip_addresses"),
    ({"dnsNames": "kafka"}, "dnsNames", "is not a list"),
    ({"ipAddresses": ["300.1.1.1"]}, "ipAddresses[0]", "not an IPv4 or IPv6 address"),
    ({"rotation": -1}, "rotation", "not a whole number from 0 to 2147483647"),
    ({"rotation": 1.5}, "rotation", "not a whole number"),
    ({"validDays": 0}, "validDays", "from 1 to"),
    ({"caCertPem": "not a certificate"}, "caCertPem", "is not a PEM CA certificate"),
])
def test_check_names_the_bad_input(provider_outputs, change, prop, reason):
    ca_outs, _ = provider_outputs
    failures = tls._CertificateProvider().check({}, leaf_inputs(ca_outs) | change).failures
    assert [(f.property, reason in f.reason) for f in failures] == [(prop, True)], \
        [(f.property, f.reason) for f in failures]


def test_check_accepts_good_inputs_wildcards_ipv6_and_unknowns(provider_outputs):
    ca_outs, leaf_outs = provider_outputs
    provider = tls._CertificateProvider()
    good = leaf_inputs(ca_outs, dnsNames=["*.kafka-headless.data-ingestion.svc.cluster.local"],
                       ipAddresses=["::1", "10.0.0.1"])
    assert provider.check({}, good).failures == []
    # In a preview (found by the engine test: the provider gets Unknown(), not the wire's string).
    for placeholder in (Unknown(), rpc.UNKNOWN):
        preview = leaf_inputs(ca_outs, caCertPem=placeholder, caKeyPem=placeholder, dnsNames=[placeholder, "ok"])
        assert provider.check({}, preview).failures == []
        assert provider.check({}, leaf_inputs(ca_outs, ipAddresses=placeholder)).failures == []
    missing = {k: v for k, v in leaf_inputs(ca_outs).items() if k != "commonName"}
    assert [(f.property, f.reason) for f in provider.check({}, missing).failures] == [("commonName", "is required")]
    # A leaf certificate is no CA.
    not_a_ca = provider.check({}, leaf_inputs(ca_outs, caCertPem=leaf_outs["certPem"])).failures
    assert [f.property for f in not_a_ca] == ["caCertPem"]


def test_constructors_refuse_bad_plain_values_before_registering(ca):
    with pytest.raises(ValueError, match=r"CertificateAuthority 'ca': common_name '' is not a common name"):
        tls.CertificateAuthority("ca", "", rotation=0)
    stand_in = SimpleNamespace(cert_pem=ca[0], key_pem=ca[1])   # a CertificateAuthority's attributes
    with pytest.raises(ValueError, match=r"^Certificate 'kafka': dns_names\[0\] 'kafka_0' is not a DNS name"):
        tls.Certificate("kafka", stand_in, "kafka", ["kafka_0"], [], rotation=0)


# ---- under the program's mocks (tests/program.py) --------------------------------------------------------------
TLS_PROGRAM = textwrap.dedent('''
    import pulumi
    from components import tls

    ca = tls.CertificateAuthority("stack-ca", "datapipe-ca", rotation=3)
    leaf = tls.Certificate("schema-registry-tls", ca, "schema-registry", ["schema-registry"], ["127.0.0.1"],
                           rotation=3)
    pulumi.export("caCertPem", ca.cert_pem)
    pulumi.export("caKeyPem", ca.key_pem)
    pulumi.export("truststore", ca.truststore_p12_b64)
    pulumi.export("certPem", leaf.cert_pem)
    pulumi.export("keyPem", leaf.key_pem)
    pulumi.export("keystore", leaf.keystore_p12_b64)
    pulumi.export("keystorePassword", leaf.keystore_password)
''')


def test_mocks_create_real_certificates_with_the_keys_secret(tmp_path):
    main = tmp_path / "__main__.py"
    main.write_text(TLS_PROGRAM)
    program = run_program(main=main)
    outputs = program.outputs
    load(outputs["certPem"]).verify_directly_issued_by(load(outputs["caCertPem"]))
    assert outputs["keyPem"].startswith(PRIVATE_KEY_HEADER) and outputs["caKeyPem"].startswith(PRIVATE_KEY_HEADER)
    assert program.secret_outputs == {"caKeyPem", "keyPem", "keystore", "keystorePassword"}
    dynamic = program.by_type("pulumi-python:dynamic:Resource")
    assert [r.name for r in dynamic] == ["stack-ca", "schema-registry-tls"]
    leaf = dynamic[1]
    assert "caKeyPem" in leaf.secret_paths and "caCertPem" not in leaf.secret_paths
    assert leaf.inputs["dnsNames"] == ["schema-registry"] and leaf.inputs["rotation"] == 3
    assert dynamic[0].urn in leaf.dependencies

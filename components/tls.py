"""One certificate authority per stack and the leaf certificates it signs, created by `pulumi up`.

Why a Pulumi dynamic provider over the `cryptography` package: the pulumi-tls plugin cannot be
built from the Go module proxy (the toolchain builds every plugin from there, see
scripts/provision/toolchain.py), and issuing certificates in the pods, Strimzi-style, would need
openssl in every image and the CA's private key mounted in pods. Here the keys are made once, in
the Pulumi program's own process, and live only in the stack's state, encrypted as secrets, and in
the Kubernetes Secrets that mount them.

What is made:
- keys: ECDSA P-256; private keys as unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), what
  Kafka's PEM keystores (ssl.keystore.type=PEM) and PostgreSQL (ssl_key_file) both read;
- the CA (`new_ca`): self-signed, CA:true with pathlen 0 (it signs leaves, never another CA);
- leaves (`issue`): DNS and IP SANs, serverAuth + clientAuth (one certificate serves a listener and
  authenticates as a client), an Authority Key Identifier (OpenSSL 3 and Python 3.13's default
  VERIFY_X509_STRICT want it). A leaf PEM is the leaf alone: `chain_pem` appends the CA for
  servers that send their chain;
- PKCS#12 files for Java components that cannot read PEM: `pkcs12_keystore` (Schema Registry's
  Jetty HTTPS listener) and `java_truststore` (the Schema Registry client in Kafka Connect's Avro
  converter, whose SslFactory only loads `KeyStore.getInstance(type)`).

Rotation: nothing renews by itself. Every input of both resources forces a replacement; bumping
the stack's `tls.rotation` replaces the CA and, through their changed CA inputs, every leaf. Leaves
are valid for 825 days and the CA for 3650 unless told otherwise: rotate before then.

The pure functions come first (tested without Pulumi), then the dynamic resources. The provider
classes sit at module level so that Pulumi pickles them by reference (`components.tls.…`): the
provider process imports this module from the project directory instead of carrying a copy.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import secrets
from typing import Any, Callable, Mapping, Optional, Sequence

import pulumi
import pulumi.dynamic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALID_DAYS = 3650
LEAF_VALID_DAYS = 825                      # the CA/Browser Forum's old ceiling; Java and OpenSSL accept it
MAX_VALID_DAYS = 100 * 365
ROTATION_MAX = 2**31 - 1
CLOCK_SKEW = datetime.timedelta(minutes=5)  # not-before is back-dated: a pod's clock may run behind ours
KEYSTORE_KDF_ROUNDS = 50_000
COMMON_NAME_MAX = 64                       # X.509's ub-common-name


# ---- keys and certificates (pure) ------------------------------------------------------------------------
def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _load_key(key_pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"expected an EC private key, got {type(key).__name__}")
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(valid_days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - CLOCK_SKEW, now + datetime.timedelta(days=valid_days)


def _key_usage(**granted: bool) -> x509.KeyUsage:
    usages = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                  encipher_only=False, decipher_only=False)
    return x509.KeyUsage(**(usages | granted))


def new_ca(common_name: str, valid_days: int = CA_VALID_DAYS) -> tuple[str, str]:
    """A self-signed CA that signs leaves only (pathlen 0). Returns (cert_pem, key_pem)."""
    key = _new_key()
    not_before, not_after = _validity(valid_days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    return _cert_pem(cert), _key_pem(key)


def issue(ca_cert_pem: str, ca_key_pem: str, common_name: str, dns_names: Sequence[str] = (),
          ip_addresses: Sequence[str] = (), valid_days: int = LEAF_VALID_DAYS) -> tuple[str, str]:
    """A leaf for TLS servers and clients, signed by the CA. Returns (cert_pem, key_pem); cert_pem
    is the leaf alone (see `chain_pem`). It never outlives the CA: not-after is capped at the CA's."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    ca_key = _load_key(ca_key_pem)
    if ca_key.public_key().public_numbers() != ca_cert.public_key().public_numbers():
        raise ValueError("the CA key does not belong to the CA certificate")
    key = _new_key()
    not_before, not_after = _validity(valid_days)
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(digital_signature=True), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                              critical=False))
    if sans:  # RFC 5280: the extension, when present, holds at least one name (a client-only leaf has none)
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key)


def chain_pem(leaf_cert_pem: str, ca_cert_pem: str) -> str:
    """The leaf followed by the CA: what a server sends when the client holds only the CA anyway
    but wants the chain (e.g. Kafka's ssl.keystore.certificate.chain)."""
    return leaf_cert_pem.rstrip("\n") + "\n" + ca_cert_pem.rstrip("\n") + "\n"


def pkcs12_keystore(cert_pem: str, key_pem: str, ca_cert_pem: str, password: str) -> bytes:
    """A PKCS#12 keystore (one PrivateKeyEntry: the leaf's key, the leaf and the CA as its chain),
    under `password`, encrypted with what Java 17 reads (PBES2 with AES-256-CBC, an HMAC-SHA256
    MAC). Java has one password for the store and the key: ssl.key.password = ssl.keystore.password.
    Its alias is the leaf's common name (Java lower-cases it)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    alias = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(KEYSTORE_KDF_ROUNDS)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256())
                  .build(password.encode()))
    return pkcs12.serialize_key_and_certificates(str(alias).encode(), _load_key(key_pem), cert, [ca_cert],
                                                 encryption)


def java_truststore(ca_cert_pem: str, alias: str = "ca") -> bytes:
    """A PKCS#12 truststore with the CA as Java's trustedCertEntry (cryptography sets the Oracle
    trusted-key-usage attribute Java looks for). Not encrypted: it holds only the public CA
    certificate. cryptography still adds a MAC, keyed with the empty password, so Java loads it with
    the password "" (MAC checked) or none (a null password: loaded unchecked); any other password
    fails with "Integrity check failed". So: ssl.truststore.password empty or unset."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    return pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(ca_cert, alias.encode())],
                                            serialization.NoEncryption())


# ---- input checks (pure; the provider's check() and the constructors use them) -----------------------------
_DNS_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def dns_name_problem(name: Any) -> Optional[str]:
    """Why `name` cannot be a DNS SAN, or None. A wildcard is allowed as the whole first label."""
    if not isinstance(name, str):
        return f"{name!r} is not a string"
    try:
        ipaddress.ip_address(name)
        return f"{name!r} is an IP address: put it in ip_addresses"
    except ValueError:
        pass
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return (f"{name!r} is not a DNS name: dot-separated labels of 1-63 letters, digits and '-' (not at a "
                "label's ends), at most 253 characters, optionally '*.' in front")
    return None


def ip_address_problem(address: Any) -> Optional[str]:
    try:
        ipaddress.ip_address(address)
        return None
    except ValueError:
        return f"{address!r} is not an IPv4 or IPv6 address"


def _int_problem(value: Any, low: int, high: int) -> Optional[str]:
    # Numbers cross the wire as floats: 3.0 is an int here, 3.5 is not.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not low <= value <= high:
        return f"{value!r} is not a whole number from {low} to {high}"
    return None


def _is_unknown(value: Any) -> bool:
    """A value only known after an update: in a preview the provider gets an `Unknown` (the engine's
    placeholder, deserialized), the constructors may get an Output."""
    from pulumi.output import Unknown
    from pulumi.runtime import rpc

    return isinstance(value, (Unknown, pulumi.Output)) or (isinstance(value, str) and value == rpc.UNKNOWN)


def _common_name_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not value.strip() or len(value) > COMMON_NAME_MAX:
        return f"{value!r} is not a common name: 1-{COMMON_NAME_MAX} characters, not blank"
    return None


def _list_problems(values: Any, problem: Callable[[Any], Optional[str]]) -> list[tuple[str, str]]:
    if _is_unknown(values):
        return []
    if not isinstance(values, (list, tuple)):
        return [("", f"{values!r} is not a list")]
    return [(f"[{i}]", p) for i, v in enumerate(values) if not _is_unknown(v) and (p := problem(v)) is not None]


def _ca_cert_problem(value: Any) -> Optional[str]:
    try:
        cert = x509.load_pem_x509_certificate(str(value).encode())
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return None
    except (ValueError, x509.ExtensionNotFound):
        pass
    return "is not a PEM CA certificate (basicConstraints CA:true)"


# What each input key (as the engine names it) must hold.
_CHECKS: dict[str, Callable[[Any], list[tuple[str, str]]]] = {
    "commonName": lambda v: [("", p)] if (p := _common_name_problem(v)) else [],
    "rotation": lambda v: [("", p)] if (p := _int_problem(v, 0, ROTATION_MAX)) else [],
    "validDays": lambda v: [("", p)] if (p := _int_problem(v, 1, MAX_VALID_DAYS)) else [],
    "dnsNames": lambda v: _list_problems(v, dns_name_problem),
    "ipAddresses": lambda v: _list_problems(v, ip_address_problem),
    "caCertPem": lambda v: [("", p)] if (p := _ca_cert_problem(v)) else [],
}


def input_problems(inputs: Mapping[str, Any], required: Sequence[str]) -> list[tuple[str, str]]:
    """(property, reason) for each bad input; unknown values (a preview's) are not judged."""
    problems = []
    for key in required:
        if key not in inputs or inputs[key] is None:
            problems.append((key, "is required"))
        elif not _is_unknown(inputs[key]) and key in _CHECKS:
            problems += [(f"{key}{where}", reason) for where, reason in _CHECKS[key](inputs[key])]
    return problems


def replaced_keys(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """The input keys whose value differs between the stored state and the new inputs.

    `olds` are the resource's outputs (which echo its inputs). Secrets may arrive unwrapped (as the
    engine sends them to a dynamic provider) or still wrapped; a value not known yet counts as
    changed; a number is compared by value (1 == 1.0: the wire has floats only)."""
    return [key for key in keys if _is_unknown(news.get(key)) or _plain(olds.get(key)) != _plain(news.get(key))]


def _plain(value: Any) -> Any:
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---- the dynamic provider ----------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# The state refers to these classes by module path (the pickled `__provider` of every resource):
# renaming or moving one breaks diff and delete of the resources made with it.
class _TlsProvider(pulumi.dynamic.ResourceProvider):
    """Shared by both resources: validation, and "any input change replaces"."""

    # The provider holds no state and no secret: its pickle is a reference to this module.
    serialize_as_secret_always = False
    inputs: tuple[str, ...] = ()
    # Inputs left out of the diff (and of the outputs): see Certificate.
    not_compared: tuple[str, ...] = ()

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = [pulumi.dynamic.CheckFailure(key, reason) for key, reason in input_problems(news, self.inputs)]
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        compared = [key for key in self.inputs if key not in self.not_compared]
        replaces = replaced_keys(olds, news, compared)
        return pulumi.dynamic.DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def _echo(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """The compared inputs, stored with the outputs so that diff() finds them there."""
        return {key: props[key] for key in self.inputs if key not in self.not_compared}


class _CertificateAuthorityProvider(_TlsProvider):
    inputs = ("commonName", "rotation", "validDays")

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        cert_pem, key_pem = new_ca(props["commonName"], int(props["validDays"]))
        serial = x509.load_pem_x509_certificate(cert_pem.encode()).serial_number
        return pulumi.dynamic.CreateResult(f"{serial:x}", {
            **self._echo(props), "certPem": cert_pem, "keyPem": key_pem,
            "truststoreP12B64": _b64(java_truststore(cert_pem))})


class _CertificateProvider(_TlsProvider):
    inputs = ("caCertPem", "caKeyPem", "commonName", "dnsNames", "ipAddresses", "rotation", "validDays")
    # The CA key changes only with the CA certificate (they are made together), so comparing the
    # certificate is enough, and the leaf's outputs hold no copy of the CA key.
    not_compared = ("caKeyPem",)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        ca_cert_pem = props["caCertPem"]
        cert_pem, key_pem = issue(ca_cert_pem, props["caKeyPem"], props["commonName"], props["dnsNames"],
                                  props["ipAddresses"], int(props["validDays"]))
        password = secrets.token_urlsafe(24)
        serial = x509.load_pem_x509_certificate(cert_pem.encode()).serial_number
        return pulumi.dynamic.CreateResult(f"{serial:x}", {
            **self._echo(props), "certPem": cert_pem, "keyPem": key_pem,
            "keystoreP12B64": _b64(pkcs12_keystore(cert_pem, key_pem, ca_cert_pem, password)),
            "keystorePassword": password})


# ---- the resources ---------------------------------------------------------------------------------------------
def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


class _TlsResource(pulumi.dynamic.Resource):
    """Python attributes in snake_case, engine properties in camelCase (as every provider's are)."""

    _properties: tuple[str, ...] = ()

    def __init__(self, provider: _TlsProvider, name: str, props: dict[str, Any], secret_outputs: list[str],
                 opts: Optional[pulumi.ResourceOptions]):
        # Fail where the program is wrong, before registering anything; values only known later
        # (Outputs) are checked by the provider's check() during the preview.
        problems = input_problems({_camel(k): v for k, v in props.items()}, provider.inputs)
        if problems:
            raise ValueError(f"{type(self).__name__} {name!r}: "
                             + "; ".join(f"{_snake(key)} {reason}" for key, reason in problems))
        outputs = {key: None for key in self._properties if key not in props}
        super().__init__(provider, name, {**props, **outputs}, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=secret_outputs)))

    def translate_input_property(self, prop: str) -> str:
        return prop if prop.startswith("_") else _camel(prop)

    def translate_output_property(self, prop: str) -> str:
        return _snake(prop) if _snake(prop) in self._properties else prop


class CertificateAuthority(_TlsResource):
    """The stack's CA. Outputs: `cert_pem`, `key_pem` (secret), `truststore_p12_b64` (base64 of a
    PKCS#12 truststore holding the CA, see `java_truststore`). Any input change replaces it; bump
    `rotation` to get a new one."""

    _properties = ("common_name", "rotation", "valid_days", "cert_pem", "key_pem", "truststore_p12_b64")
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    truststore_p12_b64: pulumi.Output[str]

    def __init__(self, name: str, common_name: pulumi.Input[str], rotation: pulumi.Input[int],
                 valid_days: pulumi.Input[int] = CA_VALID_DAYS, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(_CertificateAuthorityProvider(), name,
                         {"common_name": common_name, "rotation": rotation, "valid_days": valid_days},
                         ["key_pem"], opts)


class Certificate(_TlsResource):
    """A leaf signed by `ca` for the given SANs. Outputs: `cert_pem` (the leaf alone), `key_pem`
    (secret), `keystore_p12_b64` (secret; base64 of a PKCS#12 keystore, see `pkcs12_keystore`) and
    its `keystore_password` (secret, generated). Any input change replaces it, a new CA included."""

    _properties = ("ca_cert_pem", "ca_key_pem", "common_name", "dns_names", "ip_addresses", "rotation",
                   "valid_days", "cert_pem", "key_pem", "keystore_p12_b64", "keystore_password")
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    keystore_p12_b64: pulumi.Output[str]
    keystore_password: pulumi.Output[str]

    def __init__(self, name: str, ca: CertificateAuthority, common_name: pulumi.Input[str],
                 dns_names: pulumi.Input[Sequence[pulumi.Input[str]]],
                 ip_addresses: pulumi.Input[Sequence[pulumi.Input[str]]], rotation: pulumi.Input[int],
                 valid_days: pulumi.Input[int] = LEAF_VALID_DAYS, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(_CertificateProvider(), name, {
            "ca_cert_pem": ca.cert_pem, "ca_key_pem": ca.key_pem, "common_name": common_name,
            "dns_names": list(dns_names) if isinstance(dns_names, (list, tuple)) else dns_names,
            "ip_addresses": list(ip_addresses) if isinstance(ip_addresses, (list, tuple)) else ip_addresses,
            "rotation": rotation, "valid_days": valid_days,
        }, ["key_pem", "keystore_p12_b64", "keystore_password"], opts)

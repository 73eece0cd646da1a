"""verify-ca / verify-full verify the server against the CA bundle shipped with the worker.

- libpq verifies the server only with a root certificate file (sslrootcert); without one verify-ca/verify-full
  fail ("root certificate file ... does not exist"), and with one `require` silently behaves as verify-ca:
  https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
- RDS and Aurora present certificates of the Amazon RDS regional root CAs (the global bundle):
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html
- RDS Proxy presents certificates from AWS Certificate Manager, which chain to the Amazon Trust Services roots:
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.howitworks.html#rds-proxy-security.tls
  https://www.amazontrust.com/repository/
"""

from __future__ import annotations

import warnings

import pytest
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from psycopg.conninfo import conninfo_to_dict

from functions.worker import credentials
from functions.worker.credentials import ca_bundle_path, database_conninfo
from functions.worker.settings import WorkerSettings

# The Regions this project documents deploying to, and the RDS CAs of today's generation (valid to 2061-2121).
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2")
AMAZON_TRUST_ROOTS = {"Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4"}


def common_names() -> set[str]:
    with warnings.catch_warnings():
        # Starfield Services Root G2 (RDS Proxy's chain, in Mozilla's store too) has serial number 0
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        certificates = x509.load_pem_x509_certificates(ca_bundle_path("aws-rds-global").read_bytes())
    for certificate in certificates:
        # Every entry is a CA a server's chain may end in
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    return {c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certificates}


def test_the_bundle_holds_the_rds_roots_and_rds_proxys_roots() -> None:
    names = common_names()
    for region in REGIONS:
        for generation in ("RSA2048 G1", "RSA4096 G1", "ECC384 G1"):
            assert f"Amazon RDS {region} Root CA {generation}" in names
    assert names >= AMAZON_TRUST_ROOTS


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_a_verifying_mode_names_the_shipped_bundle(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker told to verify the server, with the shipped bundle
    settings = WorkerSettings.from_env(
        {
            "DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            "DB_SSLMODE": mode,
            "DB_CA_BUNDLE": "aws-rds-global",
        }
    )
    # When its connection options are built (the secret itself is not needed for this)
    options = _cloud_options(settings, monkeypatch)
    # Then libpq gets the bundle's path, a file the package carries
    assert options["sslmode"] == mode and options["sslrootcert"] == str(ca_bundle_path("aws-rds-global"))
    assert ca_bundle_path("aws-rds-global").is_file()


def test_require_gets_no_root_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given `require` (encrypt, do not verify) with a bundle configured  Then no root file turns it into verify-ca
    settings = WorkerSettings.from_env(
        {
            "DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            "DB_SSLMODE": "require",
            "DB_CA_BUNDLE": "aws-rds-global",
        }
    )
    assert "sslrootcert" not in _cloud_options(settings, monkeypatch)


class SecretFromMemory:
    """Stands in for the Secrets Manager provider: these tests are about the TLS options, not the read."""

    def get(self, *_: object, **__: object) -> dict[str, str]:
        return {"host": "db.example", "username": "u", "password": "p"}


def _cloud_options(settings: WorkerSettings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(credentials, "secrets_provider", SecretFromMemory)
    return conninfo_to_dict(database_conninfo(settings))

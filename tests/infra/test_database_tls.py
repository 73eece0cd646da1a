"""A stage that verifies the database's certificate hands every database function the bundle to verify with.

libpq's verify-ca / verify-full need a root certificate file (sslrootcert):
https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
"""

from __future__ import annotations

from functions.worker.credentials import ca_bundle_path
from tests.infra.conftest import SynthesizedStage

DATABASE_HANDLERS = {"handler", "migrate_handler", "probe_handler"}


def test_verifying_stages_pass_the_shipped_bundle_to_every_database_function(stage: SynthesizedStage) -> None:
    settings = stage.settings
    verifying = settings.db_sslmode in ("verify-ca", "verify-full")
    for function in stage.resources.values():
        handler = function["Properties"].get("Handler", "") if function["Type"] == "AWS::Lambda::Function" else ""
        if not handler.startswith("functions.worker.") or handler.split(".")[2] not in DATABASE_HANDLERS:
            continue
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["DB_SSLMODE"] == settings.db_sslmode
        if verifying:
            # Then the bundle is named, and the worker's package carries it
            assert (
                variables["DB_CA_BUNDLE"] == settings.db_ca_bundle and ca_bundle_path(settings.db_ca_bundle).is_file()
            )
        else:
            assert "DB_CA_BUNDLE" not in variables  # `require` with a root file would quietly become verify-ca

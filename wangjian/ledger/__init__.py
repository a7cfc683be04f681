"""The campaign ledger: database models, migrations and service functions."""

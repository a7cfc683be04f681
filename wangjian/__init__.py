"""Wangjian (网剑): the domain and persistence core of the joint online-market enforcement campaign.

Subpackages:
- ``campaign``: the campaign configuration (YAML in ``config/``) as typed models;
- ``domain``: pure rules — the working-day calendar, deadline arithmetic, routing, validation;
- ``ledger``: the database (SQLAlchemy models, Alembic migrations, service functions);
- ``mail``: the ``Mailer`` edge (SMTP or a local mailbox folder) and message rendering;
- ``cli``: the ``wangjian`` command line.
"""

__version__ = "0.1.0"

"""frozen SLA policies kept once, referenced by the referrals made under them

A frozen policy with its legal basis is one to two kilobytes; stored on every referral it was
most of the referrals table (two thirds of the ledger after a million leads). Existing
referrals are moved over: each distinct policy becomes one row of `frozen_policies`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 08:00:00
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BATCH = 10_000


def _text(body: Any) -> str:
    # FrozenPolicy.text_of, as it stood when this migration was written.
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def upgrade() -> None:
    op.create_table(
        "frozen_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frozen_policies")),
    )
    with op.batch_alter_table("frozen_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frozen_policies_digest"), ["digest"], unique=False)
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_referrals_policy_id_frozen_policies"),
            "frozen_policies",
            ["policy_id"],
            ["id"],
        )

    connection = op.get_bind()
    policies = sa.table(
        "frozen_policies", sa.column("id", ID), sa.column("digest"), sa.column("body", JSON)
    )
    referrals = sa.table(
        "referrals", sa.column("id", ID), sa.column("policy", JSON), sa.column("policy_id", ID)
    )
    ids: dict[str, int] = {}
    last = 0
    while True:
        rows = connection.execute(
            sa.select(referrals.c.id, referrals.c.policy)
            .where(referrals.c.id > last)
            .order_by(referrals.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        links = []
        for referral_id, body in rows:
            if not body:
                continue
            digest = hashlib.sha256(_text(body).encode("utf-8")).hexdigest()
            if digest not in ids:
                ids[digest] = connection.execute(
                    sa.insert(policies)
                    .values(digest=digest, body=body)
                    .returning(policies.c.id)
                ).scalar_one()
            links.append({"rid": referral_id, "pid": ids[digest]})
        if links:
            connection.execute(
                sa.update(referrals)
                .where(referrals.c.id == sa.bindparam("rid"))
                .values(policy_id=sa.bindparam("pid")),
                links,
            )

    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_column("policy")


def downgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy", JSON, nullable=True))
    connection = op.get_bind()
    connection.execute(
        sa.text(
            "update referrals set policy = (select body from frozen_policies "
            "where frozen_policies.id = referrals.policy_id)"
        )
    )
    connection.execute(sa.text("update referrals set policy = '{}' where policy is null"))
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.alter_column("policy", existing_type=JSON, nullable=False)
        batch_op.drop_constraint("fk_referrals_policy_id_frozen_policies", type_="foreignkey")
        batch_op.drop_column("policy_id")
    with op.batch_alter_table("frozen_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frozen_policies_digest"))
    op.drop_table("frozen_policies")

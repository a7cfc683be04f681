"""open referrals looked up by an 8-byte hash of (category, key), not by the key's text

Every referral goes into the listing and operator indexes at a random place, so each chunk of
a large import rewrote most of their pages; keyed by a URL or a name they were the largest
indexes of the ledger. Existing referrals get their hashes here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 01:00:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 10_000


def _hash(category: str | None, key: str | None) -> int | None:
    # wangjian.domain.dedup.match_hash, as it stood when this migration was written.
    if key is None:
        return None
    text = f"{category or ''}\x1f{key}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


def upgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listing_hash", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("operator_hash", sa.BigInteger(), nullable=True))

    connection = op.get_bind()
    referrals = sa.table(
        "referrals",
        sa.column("id", ID),
        sa.column("category"),
        sa.column("listing_key"),
        sa.column("operator_key"),
        sa.column("listing_hash", sa.BigInteger()),
        sa.column("operator_hash", sa.BigInteger()),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(
                referrals.c.id,
                referrals.c.category,
                referrals.c.listing_key,
                referrals.c.operator_key,
            )
            .where(referrals.c.id > last)
            .order_by(referrals.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        hashes = [
            {"rid": r.id, "lh": _hash(r.category, r.listing_key), "oh": _hash(r.category, r.operator_key)}
            for r in rows
            if r.listing_key is not None or r.operator_key is not None
        ]
        if hashes:
            connection.execute(
                sa.update(referrals)
                .where(referrals.c.id == sa.bindparam("rid"))
                .values(listing_hash=sa.bindparam("lh"), operator_hash=sa.bindparam("oh")),
                hashes,
            )

    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_listing")
        batch_op.drop_index("ix_referrals_operator")
        batch_op.create_index("ix_referrals_listing_hash", ["listing_hash"], unique=False)
        batch_op.create_index("ix_referrals_operator_hash", ["operator_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_operator_hash")
        batch_op.drop_index("ix_referrals_listing_hash")
        batch_op.create_index("ix_referrals_listing", ["category", "listing_key"], unique=False)
        batch_op.create_index("ix_referrals_operator", ["category", "operator_key"], unique=False)
        batch_op.drop_column("operator_hash")
        batch_op.drop_column("listing_hash")

"""Drop indexes that only slowed bulk inserts

ix_call_dispatch (campaign_id, state, next_attempt_at) already serves every lookup by
campaign, uq_contact_list_phone every lookup by list, and no query looks a call up by its
exact phone (History's search is a substring match, which a b-tree index can't serve).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_phone")
        batch_op.drop_index("ix_call_campaign_id")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_list_id")


def downgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index("ix_contact_list_id", ["list_id"], unique=False)
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_campaign_id", ["campaign_id"], unique=False)
        batch_op.create_index("ix_call_phone", ["phone"], unique=False)

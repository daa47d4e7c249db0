"""model evaluations keyed by the positive class and average they were measured with

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-14 09:00:00.000000

An evaluation's classification metrics depend on the positive class and the average asked for
(``cauce models evaluate --positive --average``, gate policies), so both join the evaluation's
identity. Existing rows were measured with the defaults: they get '' in both columns, which is
what an evaluation asking for the defaults looks up.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_KEY = "uq_model_evaluations_model_version_id_dataset_version_id_label"
NEW_KEY = "uq_model_evaluations_identity"


def upgrade() -> None:
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("positive", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("average", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.drop_constraint(OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(
            NEW_KEY, ["model_version_id", "dataset_version_id", "label", "positive", "average"]
        )
    # The default only filled the existing rows: new ones always say what they were measured with.
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        for column in ("positive", "average"):
            batch_op.alter_column(column, server_default=None)


def downgrade() -> None:
    # Only the evaluations measured with the defaults fit the narrower key.
    op.execute("DELETE FROM model_evaluations WHERE positive <> '' OR average <> ''")
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.drop_constraint(NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(
            OLD_KEY, ["model_version_id", "dataset_version_id", "label"]
        )
        batch_op.drop_column("average")
        batch_op.drop_column("positive")

"""alert actions as queued work: states, idempotency keys, leases and attempts

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10 09:00:00.000000
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_runs = sa.table(
    "action_runs",
    sa.column("id", sa.String),
    sa.column("alert_id", sa.String),
    sa.column("action", sa.String),
    sa.column("target", sa.Text),
    sa.column("started_at", sa.BigInteger),
    sa.column("ended_at", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("error", sa.Text),
    sa.column("claimed_by", sa.String),
    sa.column("position", sa.Integer),
    sa.column("idempotency_key", sa.String),
    sa.column("spec", sa.JSON),
    sa.column("created_at", sa.BigInteger),
)


def upgrade() -> None:
    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("spec", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.BigInteger(), nullable=True))
        batch_op.alter_column("started_at", existing_type=sa.BigInteger(), nullable=True)

    # Runs from before the queue ran inline and are all finished: number them per alert in the
    # order they ran, and keep what is known of each action.
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _runs.c.id, _runs.c.alert_id, _runs.c.action, _runs.c.target, _runs.c.started_at
        ).order_by(_runs.c.alert_id, _runs.c.started_at, _runs.c.id)
    ).all()
    positions: dict[str, int] = {}
    for row in rows:
        position = positions.get(row.alert_id, 0)
        positions[row.alert_id] = position + 1
        body = {"url": row.target} if row.action == "webhook" else {}
        if row.action == "trigger":
            body = {"pipeline": row.target}
        conn.execute(
            _runs.update()
            .where(_runs.c.id == row.id)
            .values(
                position=position,
                idempotency_key=f"{row.alert_id}.{position}",
                spec={row.action: body},
                created_at=row.started_at,
            )
        )

    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.alter_column("position", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("idempotency_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("spec", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("created_at", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_action_runs_idempotency_key"), ["idempotency_key"]
        )
        batch_op.create_index("ix_action_runs_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "action_attempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("action_run_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_run_id"],
            ["action_runs.id"],
            name=op.f("fk_action_attempts_action_run_id_action_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_attempts")),
        sa.UniqueConstraint(
            "action_run_id", "number", name=op.f("uq_action_attempts_action_run_id_number")
        ),
    )


def downgrade() -> None:
    op.drop_table("action_attempts")
    conn = op.get_bind()
    # Before the queue, actions ran inline and every stored run had ended: no code of that
    # version claims a pending run or finishes a running one. They end failed, saying why.
    now = int(time.time() * 1000)
    conn.execute(
        _runs.update()
        .where(_runs.c.status == "pending")
        .values(
            status="failed",
            ended_at=now,
            error="downgraded: the store went back to a version without an action queue "
            "before an agent ran this action",
        )
    )
    conn.execute(
        _runs.update()
        .where(_runs.c.status == "running")
        .values(
            status="failed",
            ended_at=now,
            error="downgraded: the store went back to a version without an action queue "
            "while an agent (" + sa.func.coalesce(_runs.c.claimed_by, "?") + ") ran this action; "
            "its outcome is not recorded",
        )
    )
    conn.execute(
        _runs.update().where(_runs.c.started_at.is_(None)).values(started_at=_runs.c.created_at)
    )
    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_action_runs_due")
        batch_op.drop_constraint(batch_op.f("uq_action_runs_idempotency_key"), type_="unique")
        batch_op.alter_column("started_at", existing_type=sa.BigInteger(), nullable=False)
        for column in (
            "created_at",
            "lease_expires_at",
            "claimed_by",
            "next_attempt_at",
            "spec",
            "idempotency_key",
            "position",
        ):
            batch_op.drop_column(column)

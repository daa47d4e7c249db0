"""monitoring and the closed loop

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 07:55:48.677731
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_sha256", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.BigInteger(), nullable=True),
        sa.Column("last_run_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )
    op.create_table(
        "reference_profiles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("reference_kind", sa.String(length=32), nullable=False),
        sa.Column("reference_id", sa.String(length=32), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["artifacts.sha256"], name=op.f("fk_reference_profiles_sha256_artifacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_profiles")),
        sa.UniqueConstraint("key", name=op.f("uq_reference_profiles_key")),
    )
    with op.batch_alter_table("reference_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reference_profiles_reference_id"), ["reference_id"], unique=False
        )

    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("reference_profile_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=True),
        sa.Column("window_end", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name=op.f("fk_monitor_runs_monitor_id_monitors")
        ),
        sa.ForeignKeyConstraint(
            ["reference_profile_id"],
            ["reference_profiles.id"],
            name=op.f("fk_monitor_runs_reference_profile_id_reference_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_runs")),
    )
    with op.batch_alter_table("monitor_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_runs_monitor_id"), ["monitor_id"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("monitor_run_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("breaches", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name=op.f("fk_alerts_monitor_id_monitors")
        ),
        sa.ForeignKeyConstraint(
            ["monitor_run_id"],
            ["monitor_runs.id"],
            name=op.f("fk_alerts_monitor_run_id_monitor_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_monitor_id"), ["monitor_id"], unique=False)

    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_version_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_model_evaluations_dataset_version_id_dataset_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_evaluations_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_evaluations")),
        sa.UniqueConstraint(
            "model_version_id",
            "dataset_version_id",
            "label",
            name=op.f("uq_model_evaluations_model_version_id_dataset_version_id_label"),
        ),
    )
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_evaluations_model_version_id"), ["model_version_id"], unique=False
        )

    op.create_table(
        "signal_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("monitor_run_id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("signal", sa.String(length=32), nullable=False),
        sa.Column("feature", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"], ["monitors.id"], name=op.f("fk_signal_results_monitor_id_monitors")
        ),
        sa.ForeignKeyConstraint(
            ["monitor_run_id"],
            ["monitor_runs.id"],
            name=op.f("fk_signal_results_monitor_run_id_monitor_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_results")),
    )
    with op.batch_alter_table("signal_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signal_results_monitor_run_id"), ["monitor_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_signal_results_series", ["monitor_id", "signal", "feature", "at"], unique=False
        )

    op.create_table(
        "action_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_action_runs_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_runs")),
    )
    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_runs_alert_id"), ["alert_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("action_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_runs_alert_id"))

    op.drop_table("action_runs")
    with op.batch_alter_table("signal_results", schema=None) as batch_op:
        batch_op.drop_index("ix_signal_results_series")
        batch_op.drop_index(batch_op.f("ix_signal_results_monitor_run_id"))

    op.drop_table("signal_results")
    with op.batch_alter_table("model_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_evaluations_model_version_id"))

    op.drop_table("model_evaluations")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_monitor_id"))

    op.drop_table("alerts")
    with op.batch_alter_table("monitor_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_runs_monitor_id"))

    op.drop_table("monitor_runs")
    with op.batch_alter_table("reference_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_profiles_reference_id"))

    op.drop_table("reference_profiles")
    op.drop_table("monitors")

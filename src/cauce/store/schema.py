"""The metadata store's tables (SQLAlchemy Core).

Times are integer milliseconds since the epoch, as in MLflow. Identifiers are 32-hex UUIDs.
Changing a table here needs a new Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Named constraints, so that migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(32)
# A lineage node: an entity id, or an artifact's 64-hex sha256.
NODE_ID = String(64)
NAME = String(255)
KEY = String(250)
# SQLite only aliases the rowid with INTEGER PRIMARY KEY, which is the cheap insert path.
SERIAL = BigInteger().with_variant(Integer(), "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", ID, ForeignKey("experiments.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False, index=True),
    Column("name", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("user", NAME, nullable=False),
    Column("parent_run_id", ID, ForeignKey("runs.id"), index=True),
    Column("source_commit", String(64)),
    Column("source_dirty", Boolean),
    Column("entry_point", Text),
    Column("python_version", String(32)),
    Column("packages_hash", String(64)),
    Column("error", Text),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("key", KEY, nullable=False),
    # NaN is kept as is_nan=True and value 0: SQLite turns a NaN REAL into NULL.
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
    # search_runs ordered by a metric walks its values in this order (tracking/search.py).
    Index("ix_metrics_key_value", "key", "value"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("uri", Text, nullable=False),
    Column("media_type", String(127), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dataset_id", ID, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
    Column("schema", JSON, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("layer", String(16)),
    Column("profile", JSON),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "content_hash"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("dataset_version_id", ID, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("context", String(64), primary_key=True),
)

# Data a run read that Cauce does not hold, as the client that logged the run described it
# (MLflow's datasets: a name, a digest of the data, and where it lives).
run_dataset_references = Table(
    "run_dataset_references",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("context", String(64), primary_key=True),
    Column("source_type", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text),
    Column("profile", Text),
    Column("created_at", BigInteger, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", ID, ForeignKey("models.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", ID, ForeignKey("runs.id"), index=True),
    Column("artifact_path", Text),
    Column("flavor", String(32), nullable=False),
    # sha256 of the version's cauce-model.yaml, which lists the sha256 of every other file.
    Column("spec_sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
    Column("signature", JSON),
    Column("files", JSON, nullable=False),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
    UniqueConstraint("model_id", "version"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_version_id", ID, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", ID, ForeignKey("models.id"), primary_key=True),
    Column("alias", NAME, primary_key=True),
    Column("model_version_id", ID, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_alias_history = Table(
    "model_alias_history",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("model_id", ID, ForeignKey("models.id"), nullable=False, index=True),
    Column("alias", NAME, nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("src_kind", String(32), nullable=False),
    Column("src_id", NODE_ID, nullable=False),
    Column("dst_kind", String(32), nullable=False),
    Column("dst_id", NODE_ID, nullable=False),
    Column("relation", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id", "relation"),
    Index("ix_lineage_edges_dst", "dst_kind", "dst_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False, index=True),
    Column("actor", NAME, nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_kind", String(32), nullable=False),
    Column("entity_id", String(255), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Index("ix_audit_events_entity", "entity_kind", "entity_id"),
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", ID, primary_key=True),
    Column("dataset_version_id", ID, ForeignKey("dataset_versions.id"), nullable=False, index=True),
    Column("suite", NAME, nullable=False),
    # sha256 of the suite's canonical JSON: the same rules give the same hash.
    Column("suite_sha256", String(64), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("results", JSON, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("source", Text),
    Column("created_at", BigInteger, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline_id", ID, ForeignKey("pipelines.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("executor", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("error", Text),
    Column("user", NAME, nullable=False),
    # The work it does, when that must not run twice (an alert action's "<alert id>.<position>").
    Column("idempotency_key", String(64), index=True),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline_run_id", ID, ForeignKey("pipeline_runs.id"), nullable=False, index=True),
    Column("step", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cache_key", String(64), nullable=False, index=True),
    Column("cache_hit", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("duration_ms", BigInteger),
    Column("error", Text),
    # {argument: {"step": name} | {"sha256": ..., "kind": ...} | {"value": ...}}
    Column("inputs", JSON, nullable=False),
    # {"sha256": ..., "kind": "parquet" | "npy" | "skops" | "json" | "pickle", "size": ...}
    Column("output", JSON),
    # Row counts, null rates … of the output, for anomaly detection against earlier runs.
    Column("stats", JSON),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    # Cron schedules: when the next firing is due. Dataset triggers: the newest version seen.
    Column("next_run_at", BigInteger),
    Column("last_seen_version", Integer),
    Column("last_run_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

schedule_firings = Table(
    "schedule_firings",
    metadata,
    Column("id", ID, primary_key=True),
    Column("schedule_id", ID, ForeignKey("schedules.id"), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("pipeline_run_id", ID),
    Column("error", Text),
)

# -- serving ---------------------------------------------------------------------------------

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    # Live split and shadow copy, {deployment name: percent}; they move, their history is kept.
    Column("traffic", JSON, nullable=False),
    Column("mirror", JSON, nullable=False),
    # Bumped on every change that a running router must pick up.
    Column("revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("endpoint_id", ID, ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("name", NAME, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    # What it serves, pinned when applied: "model" (a registered version, an LLM included),
    # "prompt" (a prompt version with a connection), "flow" (a flow version) or "connection"
    # (an upstream LLM server, proxied).
    Column("target_kind", String(16), nullable=False, server_default="model"),
    Column("model_version_id", ID, ForeignKey("model_versions.id")),
    Column("prompt_version_id", ID, ForeignKey("prompt_versions.id")),
    Column("flow_version_id", ID, ForeignKey("flow_versions.id")),
    Column("connection_id", ID, ForeignKey("connections.id")),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("endpoint_id", "name"),
)

traffic_history = Table(
    "traffic_history",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("endpoint_id", ID, ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("traffic", JSON, nullable=False),
    Column("mirror", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("at", BigInteger, nullable=False),
)

# What routers measured, per deployment and time window: what rollout analysis reads.
deployment_stats = Table(
    "deployment_stats",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("endpoint_id", ID, ForeignKey("endpoints.id"), nullable=False),
    Column("deployment", NAME, nullable=False),
    Column("source", String(8), nullable=False),  # live | mirror
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("latency_sum_ms", Float, nullable=False),
    Column("latency_buckets", JSON, nullable=False),  # counts per LATENCY_BOUNDS_MS bucket
    Index("ix_deployment_stats_lookup", "endpoint_id", "deployment", "window_end"),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("endpoint_id", ID, ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("candidate", NAME, nullable=False),
    Column("stable", NAME, nullable=False),
    Column("spec", JSON, nullable=False),
    # running | paused | promoted | rolled_back | aborted
    Column("state", String(16), nullable=False),
    Column("stage", Integer, nullable=False),  # -1: mirror pre-stage; else the index of steps
    Column("stage_started_at", BigInteger, nullable=False),
    Column("next_analysis_at", BigInteger),
    Column("failures", Integer, nullable=False),
    Column("reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
)

rollout_decisions = Table(
    "rollout_decisions",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("rollout_id", ID, ForeignKey("rollouts.id"), nullable=False, index=True),
    Column("at", BigInteger, nullable=False),
    Column("stage", Integer, nullable=False),
    # analysis outcomes: pass | fail | inconclusive; actions: advance | promote | rollback |
    # pause | resume | abort
    Column("decision", String(16), nullable=False),
    Column("measured", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", NAME, nullable=False),
)

# -- monitoring and the closed loop -----------------------------------------------------------

monitors = Table(
    "monitors",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_at", BigInteger),  # when the schedule is next due; None: no schedule
    Column("last_run_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Computed once per reference and binning; a monitor run only profiles its current window.
reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("id", ID, primary_key=True),
    # sha256 of the reference's content hash, the columns and the binning: same key, same profile.
    Column("key", String(64), nullable=False, unique=True),
    Column("reference_kind", String(32), nullable=False),  # dataset_version
    Column("reference_id", ID, nullable=False, index=True),
    Column("row_count", BigInteger, nullable=False),
    # The profile itself (bin edges and counts, quantiles, frequencies …) as a JSON artifact.
    Column("sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

monitor_runs = Table(
    "monitor_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("monitor_id", ID, ForeignKey("monitors.id"), nullable=False, index=True),
    Column("reference_profile_id", ID, ForeignKey("reference_profiles.id")),
    # ok | alert | no_data | failed
    Column("status", String(16), nullable=False),
    Column("window_start", BigInteger),
    Column("window_end", BigInteger),
    Column("rows", BigInteger, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("error", Text),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
)

# One value per monitor run, signal, feature and metric: the time series behind history and
# reports.
signal_results = Table(
    "signal_results",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("monitor_run_id", ID, ForeignKey("monitor_runs.id"), nullable=False, index=True),
    Column("monitor_id", ID, ForeignKey("monitors.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("signal", String(32), nullable=False),
    Column("feature", NAME, nullable=False),  # "*" for a dataset-level value
    Column("metric", String(64), nullable=False),
    Column("value", Float),  # None: could not be computed (see details)
    Column("threshold", Float),
    # passed | breached | not_computed
    Column("outcome", String(16), nullable=False),
    Column("details", JSON),
    Index("ix_signal_results_series", "monitor_id", "signal", "feature", "at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("monitor_id", ID, ForeignKey("monitors.id"), nullable=False, index=True),
    Column("monitor_run_id", ID, ForeignKey("monitor_runs.id"), nullable=False),
    # sha256 of the monitor and the breached (signal, feature, metric): one incident, one value.
    Column("fingerprint", String(64), nullable=False),
    # open | suppressed (a duplicate within the cooldown) | resolved
    Column("state", String(16), nullable=False),
    Column("breaches", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger),
)

# An alert's action as queued work: stored pending with the alert, claimed and run by an agent.
action_runs = Table(
    "action_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("alert_id", ID, ForeignKey("alerts.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),  # the action's place in the monitor's on_alert
    # "<alert id>.<position>": one alert never has two runs of the same action.
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("action", String(32), nullable=False),  # webhook | trigger | log
    Column("target", Text, nullable=False),
    Column("spec", JSON, nullable=False),  # the action as it was when the alert was raised
    # pending | running | succeeded | failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),  # attempts started so far
    Column("next_attempt_at", BigInteger),  # pending: not before then
    # running: the agent that claimed it, until its lease expires unless renewed
    Column("claimed_by", String(128)),
    Column("lease_expires_at", BigInteger),
    Column("result", JSON),
    Column("error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),  # the first attempt's start
    Column("ended_at", BigInteger),
    Index("ix_action_runs_due", "status", "next_attempt_at"),
)

# One attempt at an action run: which agent, when, and how it ended.
action_attempts = Table(
    "action_attempts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("action_run_id", ID, ForeignKey("action_runs.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("agent", String(128), nullable=False),
    # running | succeeded | failed | abandoned (its agent stopped renewing the lease)
    Column("outcome", String(16), nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    UniqueConstraint("action_run_id", "number"),
)

# A model version's metrics on one dataset version: gates compare versions on the same data.
model_evaluations = Table(
    "model_evaluations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_version_id", ID, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("dataset_version_id", ID, ForeignKey("dataset_versions.id"), nullable=False),
    Column("label", NAME, nullable=False),
    # The positive class and average asked for, as text; '' for the defaults (cauce.stats).
    Column("positive", NAME, nullable=False),
    Column("average", String(16), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint(
        "model_version_id",
        "dataset_version_id",
        "label",
        "positive",
        "average",
        name="uq_model_evaluations_identity",
    ),
)

# -- GenAI ------------------------------------------------------------------------------------

prompts = Table(
    "prompts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Immutable: a change of messages, variables or model parameters is a new version.
prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("prompt_id", ID, ForeignKey("prompts.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("messages", JSON, nullable=False),
    Column("variables", JSON, nullable=False),
    Column("model_parameters", JSON, nullable=False),
    Column("commit_message", Text),
    # sha256 of the canonical JSON of messages, variables and model parameters.
    Column("content_sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
    UniqueConstraint("prompt_id", "version"),
)

prompt_tags = Table(
    "prompt_tags",
    metadata,
    Column("prompt_id", ID, ForeignKey("prompts.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

prompt_version_tags = Table(
    "prompt_version_tags",
    metadata,
    Column("prompt_version_id", ID, ForeignKey("prompt_versions.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

prompt_labels = Table(
    "prompt_labels",
    metadata,
    Column("prompt_id", ID, ForeignKey("prompts.id"), primary_key=True),
    Column("label", NAME, primary_key=True),
    Column("prompt_version_id", ID, ForeignKey("prompt_versions.id"), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

prompt_label_history = Table(
    "prompt_label_history",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("prompt_id", ID, ForeignKey("prompts.id"), nullable=False, index=True),
    Column("label", NAME, nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("reason", Text),
    Column("at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
)

# A connection's spec never holds its secret: that is Fernet ciphertext in ``secret``.
connections = Table(
    "connections",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("provider", String(32), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("secret", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# OpenTelemetry spans as Cauce stores them (ids in hex, as OTLP/JSON writes them).
traces = Table(
    "traces",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("root_span_id", String(16), nullable=False),
    Column("started_at", BigInteger, nullable=False, index=True),
    Column("ended_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("span_count", Integer, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost", Float),
    Column("session_id", String(256)),
    Column("user_id", String(256)),
    # The experiment it was sent to, or its run's; none: the workspace's default experiment.
    Column("experiment_id", String(32)),
    # A session's, a user's or an experiment's latest trace read from the index alone.
    Index("ix_traces_session_started", "session_id", "started_at"),
    Index("ix_traces_user_started", "user_id", "started_at"),
    Index("ix_traces_experiment_started", "experiment_id", "started_at"),
)

# A trace's tags: from its spans (``cauce.trace.tag.KEY``, Langfuse's and OpenInference's
# lists, as keys with an empty value), from MLflow's trace info, or set afterwards. No foreign
# key: a tag may come before the trace's summary does.
trace_tags = Table(
    "trace_tags",
    metadata,
    Column("trace_id", ID, primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_trace_tags_key", "key"),
)

spans = Table(
    "spans",
    metadata,
    Column("trace_id", ID, primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_id", String(16)),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("operation", String(32)),
    Column("started_ns", BigInteger, nullable=False),
    Column("ended_ns", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cost", Float),
    Column("attributes", JSON, nullable=False),
    Column("events", JSON, nullable=False),
)

flows = Table(
    "flows",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# A YAML flow's spec, or for a Python flow its function and the sha256 of its source.
flow_versions = Table(
    "flow_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("flow_id", ID, ForeignKey("flows.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
    UniqueConstraint("flow_id", "version"),
)

# A judge model's answers by (model, judge prompt and version, params, inputs): re-running an
# evaluation reads them back, so its scores reproduce at no cost.
judge_answers = Table(
    "judge_answers",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("answer", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

indexes = Table(
    "indexes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("current_version_id", ID),
    # When the agent refreshes it next (schedule, max_age, never built: now); None: only asked.
    Column("next_refresh_at", BigInteger),
    Column("refreshed_at", BigInteger),
    # The dataset version a dataset-sourced index was last refreshed from.
    Column("source_version_id", ID),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

index_versions = Table(
    "index_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("index_id", ID, ForeignKey("indexes.id"), nullable=False),
    Column("version", Integer, nullable=False),
    # sha256 of (documents' hashes, chunker settings, embedding model): the same inputs, the same.
    Column("content_id", String(64), nullable=False),
    Column("embedding_model", String(255), nullable=False),
    Column("chunker", JSON, nullable=False),
    Column("artifact_sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
    Column("document_count", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("stats", JSON, nullable=False),
    Column("skipped", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
    UniqueConstraint("index_id", "version"),
)

index_documents = Table(
    "index_documents",
    metadata,
    Column("index_version_id", ID, ForeignKey("index_versions.id"), primary_key=True),
    Column("document_id", String(1000), primary_key=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("media_type", String(64), nullable=False),
)

# Chunks with their text and metadata, once per index: a chunk of an unchanged document is
# shared by every version that holds the document. ``id`` is sha256 of (chunker settings key,
# document sha256, chunk id); a version's chunks are those of its documents and chunker.
index_chunks = Table(
    "index_chunks",
    metadata,
    Column("index_id", ID, ForeignKey("indexes.id"), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("chunker_key", String(16), nullable=False),
    Column("document_id", String(1000), nullable=False),
    Column("document_sha256", String(64), nullable=False),
    Column("chunk_id", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("metadata", JSON, nullable=False),
    Index("ix_index_chunks_document", "index_id", "document_id", "document_sha256"),
)

# Vectors by (embedding model, sha256 of the text): a text is embedded once per model.
embeddings = Table(
    "embeddings",
    metadata,
    Column("model_id", String(255), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)

retrievals = Table(
    "retrievals",
    metadata,
    Column("id", ID, primary_key=True),
    Column("index_version_id", ID, ForeignKey("index_versions.id"), nullable=False, index=True),
    Column("query_sha256", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("k", Integer, nullable=False),
    Column("trace_id", ID),
    Column("span_id", String(16)),
    Column("created_at", BigInteger, nullable=False),
)

retrieval_hits = Table(
    "retrieval_hits",
    metadata,
    Column("retrieval_id", ID, ForeignKey("retrievals.id"), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("chunk_id", Text, nullable=False),
    Column("document_id", String(1000), nullable=False, index=True),
    Column("score", Float, nullable=False),
)

# Chunks an injection scan held back, at indexing (``quarantined``: never embedded) or at
# retrieval (``dropped`` from one answer's context).
index_quarantine = Table(
    "index_quarantine",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("index_id", ID, ForeignKey("indexes.id"), nullable=False, index=True),
    Column("index_version_id", ID),
    Column("stage", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("document_id", String(1000), nullable=False),
    Column("chunk_id", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("score", Float),
    Column("created_at", BigInteger, nullable=False),
)

# API keys of GenAI endpoints: only the sha256 of a key is kept; ``prefix`` shows which it is.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("endpoint_id", ID, ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("name", NAME, nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_sha256", String(64), nullable=False, unique=True),
    # requests_per_minute, tokens_per_minute, token_budget, budget_period
    Column("limits", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("user", NAME, nullable=False),
    UniqueConstraint("endpoint_id", "name"),
)

# Tokens a key spent per budget period ("2026-12-03" for a day, "2026-12" for a month).
api_key_usage = Table(
    "api_key_usage",
    metadata,
    Column("key_id", ID, ForeignKey("api_keys.id"), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost", Float, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# The usage reports of an endpoint's routers already added, by id, so that a report sent again
# (its answer lost on the way back) is not counted twice. Kept a day.
api_key_usage_reports = Table(
    "api_key_usage_reports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("endpoint_id", ID, ForeignKey("endpoints.id"), nullable=False, index=True),
    Column("at", BigInteger, nullable=False, index=True),
)

catalog_models = Table(
    "catalog_models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("spec", JSON, nullable=False),
    Column("spec_sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# API tokens of the team server (``cauce tokens``): only the sha256 of a token is kept;
# ``prefix`` shows which it is. ``name`` is the principal the token authenticates as; several
# tokens may share one (a rotation keeps the old one alive until it is revoked).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, index=True),
    Column("prefix", String(16), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("user", NAME, nullable=False),
)

# A token's role per workspace: viewer, editor or admin; workspace ``*`` is every workspace.
api_token_roles = Table(
    "api_token_roles",
    metadata,
    Column("token_id", ID, ForeignKey("api_tokens.id"), primary_key=True),
    Column("workspace", NAME, primary_key=True),
    Column("role", String(16), nullable=False),
)


# MLflow 3's logged models (a model folder with an id, logged by a run or alone), kept so that
# the MLflow client works against `cauce server`. A run's logged model stores its files as the
# run's artifacts under ``artifact_path``; one without a run keeps them in ``files``.
logged_models = Table(
    "logged_models",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False, index=True),
    Column("run_id", ID, ForeignKey("runs.id"), index=True),
    Column("name", NAME, nullable=False),
    Column("artifact_path", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("model_type", NAME),
    Column("step", BigInteger, nullable=False),
    Column("user", NAME, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("files", JSON, nullable=False),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

"""SQLAlchemy tables. Indexed columns serve queries; `record` keeps the full result for exact reloading;
raw per-request latencies are kept compressed so any statistic can be recomputed later."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EnvironmentRow(Base):
    __tablename__ = "environments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[str] = mapped_column(String(40))


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    environment_id: Mapped[str | None] = mapped_column(ForeignKey("environments.id"), nullable=True)
    created_at: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("run_id", "spec_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    spec_key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    model_hash: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(64))
    batch: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict] = mapped_column(JSON)


class ResultRow(Base):
    __tablename__ = "results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), unique=True)
    environment_id: Mapped[str | None] = mapped_column(ForeignKey("environments.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    throughput_sps: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_median_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    load_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    effective: Mapped[dict] = mapped_column(JSON)
    record: Mapped[dict] = mapped_column(JSON)
    latencies: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    finished_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class MetricRow(Base):
    """One accuracy metric of one result, as a fraction or score (not ×100), for queries across runs."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("result_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    dataset_hash: Mapped[str] = mapped_column(String(64), index=True)


class ArtifactRow(Base):
    """A model file inferlab derived from another (FP16, INT8 ...): its lineage."""

    __tablename__ = "artifacts"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    parent_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    parent_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    method: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    calibration_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[dict] = mapped_column(JSON)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(String(40))


class StudyRow(Base):
    """A tuning study: the search it runs (space, objectives, sampler, seed) over one run's trials."""

    __tablename__ = "studies"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    best: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[str] = mapped_column(String(40))
    finished_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class StudyTrialRow(Base):
    """One proposal of a study (measured, pruned, failed or a re-measurement), in order."""

    __tablename__ = "study_trials"
    __table_args__ = (UniqueConstraint("run_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("studies.run_id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    spec_key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    record: Mapped[dict] = mapped_column(JSON)


class LayerRow(Base):
    """One layer of a trial's per-layer profile (`profile: layers`), per inference, in execution order; the
    profile's own figures (runtime, iterations, totals) stay in the result's record."""

    __tablename__ = "layers"
    __table_args__ = (UniqueConstraint("result_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(128))
    kernel: Mapped[str | None] = mapped_column(Text, nullable=True)
    precision: Mapped[str | None] = mapped_column(String(32), nullable=True)
    time_ms: Mapped[float] = mapped_column(Float)
    share: Mapped[float] = mapped_column(Float)
    cpu_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    device: Mapped[str | None] = mapped_column(String(128), nullable=True)


class PeaksRow(Base):
    """A device's roofs as one runtime reaches them in one precision, on one environment: the best of what the
    roofline micro-benchmarks measured there."""

    __tablename__ = "peaks"
    __table_args__ = (UniqueConstraint("environment_id", "backend", "device", "precision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    backend: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(32))
    flops_per_s: Mapped[float] = mapped_column(Float)
    bytes_per_s: Mapped[float] = mapped_column(Float)
    record: Mapped[dict] = mapped_column(JSON)
    measured_at: Mapped[str] = mapped_column(String(40))


class MemberRow(Base):
    """One member of a multi-device trial's result (`multi:A,B`: a device) or of an ensemble's (a model), with
    its own figures, for queries across runs."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("result_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(64), index=True)
    requests: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)
    throughput_sps: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_median_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)       # an ensemble's member
    alone_throughput_sps: Mapped[float | None] = mapped_column(Float, nullable=True)
    alone_latency_median_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    interference: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)

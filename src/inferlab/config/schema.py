"""The experiment schema. Validation only: no I/O, no probing. A value given as a list is swept."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from inferlab.backends.base import Scalar
from inferlab.measure.trial import Mode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class InputOverride(_Strict):
    """Overrides for one model input; the model's own declaration fills what is left out."""

    shape: list[int] | None = Field(None, description="full shape; -1 for the batch dimension")
    dtype: str | None = Field(None, description="float32, float16, int64, int32, uint8, bool ...")
    range: tuple[float, float] | None = Field(None, description="[low, high) of synthetic values")

    @field_validator("shape")
    @classmethod
    def _dims(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(d < -1 or d == 0 for d in v):
            raise ValueError("dimensions are positive, or -1 for the batch")
        return v


class ModelEntry(_Strict):
    path: str = Field(description="an .onnx file, an OpenVINO .xml, a .pt2 file or 'package.module:factory'")
    name: str | None = Field(None, description="display name (default: the file's stem)")
    alternates: list[str] = Field(default_factory=list,
                                  description="the same model in other formats, for backends that need them")
    inputs: dict[str, InputOverride] = Field(default_factory=dict)

    def display_name(self) -> str:
        if self.name:
            return self.name
        return Path(self.path).stem if ":" not in self.path else self.path.rsplit(":", 1)[1]


class BackendEntry(_Strict):
    name: str = Field(description="a backend's name, as `inferlab backends` lists it")
    devices: list[str] | None = Field(None, description="devices for this backend (default: the top-level list)")
    params: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict,
                                                     description="knobs; a list is swept")


class MeasureConfig(_Strict):
    warmup_iterations: int = Field(10, ge=0)
    min_iterations: int = Field(50, ge=1)
    min_duration_s: float = Field(3.0, ge=0)
    max_duration_s: float = Field(60.0, gt=0)
    target_ci_rel_width: float | None = Field(None, gt=0, lt=1)
    in_flight: int | None = Field(None, ge=1)
    input_pool: int = Field(16, ge=1, le=4096)
    seed: int = Field(0, ge=0)
    timeout_s: float = Field(600.0, gt=0)
    memory_limit_mb: float | None = Field(None, gt=0, description="stop a trial whose RSS passes this")


class Rule(_Strict):
    """Matches trials: every key given must match (a list matches any of its values)."""

    model: str | list[str] | None = None
    backend: str | list[str] | None = None
    device: str | list[str] | None = None
    batch: int | list[int] | None = None
    mode: Mode | list[Mode] | None = None
    params: dict[str, Scalar | list[Scalar]] | None = None


class Experiment(_Strict):
    name: str = "experiment"
    models: list[ModelEntry] = Field(min_length=1)
    backends: list[BackendEntry] = Field(min_length=1)
    devices: list[str] = Field(default_factory=lambda: ["cpu"], min_length=1)
    batch: int | list[int] = 1
    mode: Mode | list[Mode] = "latency"
    measure: MeasureConfig = MeasureConfig()
    repeats: int = Field(1, ge=1, le=1000)
    include: list[Rule] = Field(default_factory=list, description="keep only trials matching one of these")
    exclude: list[Rule] = Field(default_factory=list, description="drop trials matching any of these")

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("batch")
    @classmethod
    def _batch(cls, v: int | list[int]) -> int | list[int]:
        values = v if isinstance(v, list) else [v]
        if not values or any(b < 1 for b in values):
            raise ValueError("batch sizes are positive integers")
        return v

    @property
    def source(self) -> Path | None:
        return self._source

    def base_dir(self) -> Path:
        return self._source.parent if self._source is not None else Path.cwd()

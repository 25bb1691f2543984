"""Pre-processing: a decoded sample becomes the model's input tensor, and the geometry to map boxes back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inferlab.errors import DatasetError
from inferlab.records.accuracy import Preprocess


@dataclass(frozen=True)
class Geometry:
    """Maps model-input pixels back to the original image: orig = (input + offset) / scale."""

    in_h: int
    in_w: int
    scale_y: float = 1.0
    scale_x: float = 1.0
    offset_y: float = 0.0
    offset_x: float = 0.0

    def to_original(self, boxes_xyxy_px: np.ndarray) -> np.ndarray:
        out = np.asarray(boxes_xyxy_px, np.float64).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] + self.offset_x) / self.scale_x
        out[:, [1, 3]] = (out[:, [1, 3]] + self.offset_y) / self.scale_y
        return out


def _resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    if x.dtype == np.uint8:
        mode_img = Image.fromarray(x[..., 0] if x.shape[2] == 1 else x)
        out = np.asarray(mode_img.resize((w, h), Image.Resampling.BILINEAR))
        return out[..., None] if out.ndim == 2 else out
    channels = [np.asarray(Image.fromarray(x[..., c].astype(np.float32), mode="F")
                           .resize((w, h), Image.Resampling.BILINEAR)) for c in range(x.shape[2])]
    return np.stack(channels, axis=-1)


def preprocess(sample: np.ndarray, p: Preprocess, dtype: str, where: str) -> tuple[np.ndarray, Geometry]:
    """One sample (HWC, or any array with layout 'none') to one input tensor (without the batch dimension)."""
    x = np.asarray(sample)
    if p.layout == "none":
        return x.astype(p.dtype or dtype, copy=False), Geometry(0, 0)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise DatasetError(f"{where}: sample of shape {list(x.shape)} is not an image (H, W, C); "
                           "set preprocess.layout: none to feed arrays as they are")
    if p.color == "gray" and x.shape[2] == 3:
        x = (x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].astype(x.dtype)
    elif p.color in ("rgb", "bgr") and x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    if p.color == "bgr":
        x = x[..., ::-1]
    h0, w0 = x.shape[:2]
    sy = sx = 1.0
    if p.resize is not None:
        x = _resize(x, *p.resize)
        sy, sx = p.resize[0] / h0, p.resize[1] / w0
    elif p.resize_shorter is not None:
        s = p.resize_shorter / min(h0, w0)
        x = _resize(x, max(1, round(h0 * s)), max(1, round(w0 * s)))
        sy, sx = x.shape[0] / h0, x.shape[1] / w0
    oy = ox = 0
    if p.crop is not None:
        ch, cw = p.crop
        if ch > x.shape[0] or cw > x.shape[1]:
            raise DatasetError(f"{where}: crop {list(p.crop)} is larger than the resized image "
                               f"{list(x.shape[:2])}; resize it larger first")
        oy, ox = (x.shape[0] - ch) // 2, (x.shape[1] - cw) // 2
        x = x[oy:oy + ch, ox:ox + cw]
    y: np.ndarray = x.astype(np.float32) * np.float32(p.scale)
    for values, name in ((p.mean, "mean"), (p.std, "std")):
        if values is not None and len(values) not in (1, y.shape[2]):
            raise DatasetError(f"{where}: preprocess.{name} has {len(values)} values for {y.shape[2]} channels")
    if p.mean is not None:
        y = y - np.asarray(p.mean, np.float32)
    if p.std is not None:
        y = np.divide(y, np.asarray(p.std, np.float32), dtype=np.float32)
    if p.layout == "NCHW":
        y = y.transpose(2, 0, 1)
    geometry = Geometry(x.shape[0], x.shape[1], sy, sx, float(oy), float(ox))
    return np.ascontiguousarray(y.astype(p.dtype or dtype, copy=False)), geometry

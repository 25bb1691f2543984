"""A panel of real-world-shaped models, written here with seeded random weights: a YOLOv8-like detector,
PaddleOCR-like recogniser and text detector, a Silero-VAD-like recurrent model, a BERT-like text encoder
and a masked pooling head. PANEL describes each one's inputs, outputs and dynamic axes for build_panel.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

# ---------------------------------------------------------------------------------------------- detector


class Conv(nn.Module):
    """Conv2d + BatchNorm + SiLU, the YOLOv8 building block."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c, c, 3), Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP bottleneck with two convolutions (YOLOv8): split, n bottlenecks, concatenate every stage."""

    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = Conv(cin, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, cout)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(cin, cin // 2), Conv(cin // 2 * 4, cout)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat((x, y1, y2, self.pool(y2)), 1))


class Detector(nn.Module):
    """Imitates an Ultralytics YOLOv8 detector exported with dynamic=True (at about 0.4x YOLOv8n's width, slimmer head):
    C2f backbone, SPPF, PAN neck, decoupled head with DFL box regression over strides 8/16/32.

    Input ``images`` float32 [batch, 3, height, width], RGB scaled to 0..1; height and width must be multiples
    of 32 (640x640 is the usual size). Outputs ``boxes`` [batch, anchors, 4] (x1, y1, x2, y2 in input pixels)
    and ``scores`` [batch, anchors, 80] (sigmoid class scores), anchors = (h/8)(w/8) + (h/16)(w/16) + (h/32)(w/32),
    i.e. 8400 at 640x640. No NMS inside, as in the real export."""

    def __init__(self, w: tuple[int, ...] = (8, 16, 24, 48, 96), classes: int = 80, reg_max: int = 16,
                 head: int = 24) -> None:
        super().__init__()
        self.classes, self.reg_max = classes, reg_max
        self.strides = (8, 16, 32)
        self.stem = nn.Sequential(Conv(3, w[0], 3, 2), Conv(w[0], w[1], 3, 2), C2f(w[1], w[1]))
        self.p3 = nn.Sequential(Conv(w[1], w[2], 3, 2), C2f(w[2], w[2]))
        self.p4 = nn.Sequential(Conv(w[2], w[3], 3, 2), C2f(w[3], w[3]))
        self.p5 = nn.Sequential(Conv(w[3], w[4], 3, 2), C2f(w[4], w[4]), SPPF(w[4], w[4]))
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.top_down4 = C2f(w[4] + w[3], w[3], shortcut=False)
        self.top_down3 = C2f(w[3] + w[2], w[2], shortcut=False)
        self.down3 = Conv(w[2], w[2], 3, 2)
        self.bottom_up4 = C2f(w[2] + w[3], w[3], shortcut=False)
        self.down4 = Conv(w[3], w[3], 3, 2)
        self.bottom_up5 = C2f(w[3] + w[4], w[4], shortcut=False)
        cb = cc = head  # YOLOv8 uses max(16, w[2] // 4, 4 * reg_max) and max(w[2], min(classes, 100)): slower
        self.box = nn.ModuleList(nn.Sequential(Conv(c, cb, 3), Conv(cb, cb, 3), nn.Conv2d(cb, 4 * reg_max, 1))
                                 for c in (w[2], w[3], w[4]))
        self.cls = nn.ModuleList(nn.Sequential(Conv(c, cc, 3), Conv(cc, cc, 3), nn.Conv2d(cc, classes, 1))
                                 for c in (w[2], w[3], w[4]))
        self.register_buffer("bins", torch.arange(reg_max, dtype=torch.float32), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x3 = self.p3(self.stem(images))
        x4 = self.p4(x3)
        x5 = self.p5(x4)
        t4 = self.top_down4(torch.cat((self.up(x5), x4), 1))
        n3 = self.top_down3(torch.cat((self.up(t4), x3), 1))
        n4 = self.bottom_up4(torch.cat((self.down3(n3), t4), 1))
        n5 = self.bottom_up5(torch.cat((self.down4(n4), x5), 1))
        b = images.shape[0]
        dist, logits, centres, strides = [], [], [], []
        for i, feat in enumerate((n3, n4, n5)):
            h, w = feat.shape[2], feat.shape[3]
            dist.append(self.box[i](feat).reshape(b, 4 * self.reg_max, -1))
            logits.append(self.cls[i](feat).reshape(b, self.classes, -1))
            sy = torch.arange(h, dtype=torch.float32) + 0.5
            sx = torch.arange(w, dtype=torch.float32) + 0.5
            gy, gx = torch.meshgrid(sy, sx, indexing="ij")
            centres.append(torch.stack((gx, gy), -1).reshape(-1, 2) * self.strides[i])
            strides.append(torch.full_like(gx.reshape(-1, 1), float(self.strides[i])))
        d = torch.cat(dist, 2).reshape(b, 4, self.reg_max, -1).softmax(2)
        ltrb = (d * self.bins.reshape(1, 1, -1, 1)).sum(2).transpose(1, 2) * torch.cat(strides, 0)  # [b, A, 4]
        xy = torch.cat(centres, 0)
        boxes = torch.cat((xy - ltrb[..., :2], xy + ltrb[..., 2:]), -1)
        return boxes, torch.cat(logits, 2).transpose(1, 2).sigmoid()


# ---------------------------------------------------------------------------------------------------- OCR


def _cbr(cin: int, cout: int, k: int = 3, s: int | tuple[int, int] = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.Hardswish())


class OcrRecognizer(nn.Module):
    """Imitates a PaddleOCR (PP-OCR) CRNN text-line recogniser: conv backbone that collapses the 48-pixel height,
    a bidirectional LSTM over the width, a CTC head (softmax over 96 characters + blank).

    Input ``x`` float32 [batch, 3, 48, width], a text line normalised to -1..1; height is fixed at 48, width
    is free (320 is usual, at least 4). Output ``softmax`` [batch, steps, 97] with steps = ceil(width / 4)."""

    def __init__(self, chars: int = 96, hidden: int = 48) -> None:
        super().__init__()
        self.backbone = nn.Sequential(_cbr(3, 16, 3, 2), _cbr(16, 32, 3, 2),        # 48 -> 12, w/4
                                      _cbr(32, 64, 3, (2, 1)), _cbr(64, 96, 3, (2, 1)),  # 12 -> 3
                                      _cbr(96, 96, 3, 1))
        self.rnn = nn.LSTM(96, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, chars + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x).mean(2).transpose(1, 2)  # [b, steps, 96]
        y, _ = self.rnn(f)
        return self.head(y).softmax(-1)


class OcrDetector(nn.Module):
    """Imitates a PaddleOCR DBNet text detector as Paddle2ONNX writes it: input ``x`` float32
    [p2o.DynamicDimension.0, 3, p2o.DynamicDimension.1, p2o.DynamicDimension.2] (batch, height, width, all
    dynamic; the names do not say which is the batch). Height and width must be multiples of 32 (960 on the
    long side is usual). Output ``sigmoid_0.tmp_0`` [batch, 1, height, width], a text probability map."""

    def __init__(self, w: tuple[int, ...] = (8, 16, 24, 32), neck: int = 16) -> None:
        super().__init__()
        self.stem = _cbr(3, w[0], 3, 2)
        self.stages = nn.ModuleList([_cbr(w[0], w[0], 3, 2), _cbr(w[0], w[1], 3, 2), _cbr(w[1], w[2], 3, 2),
                                     _cbr(w[2], w[3], 3, 2)])  # strides 4, 8, 16, 32
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck, 1) for c in w)
        self.smooth = nn.ModuleList(nn.Conv2d(neck, neck // 4, 3, padding=1) for _ in w)
        self.head = nn.Sequential(_cbr(neck, neck // 4, 3), nn.ConvTranspose2d(neck // 4, neck // 4, 2, 2),
                                  nn.BatchNorm2d(neck // 4), nn.ReLU(), nn.ConvTranspose2d(neck // 4, 1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, y = [], self.stem(x)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        lat = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(lat) - 2, -1, -1):  # top-down FPN
            lat[i] = lat[i] + F.interpolate(lat[i + 1], scale_factor=2.0, mode="nearest")
        outs = [F.interpolate(s(p), scale_factor=float(2 ** i), mode="nearest") if i else s(p)
                for i, (s, p) in enumerate(zip(self.smooth, lat, strict=True))]
        return self.head(torch.cat(outs, 1)).sigmoid()


# ---------------------------------------------------------------------------------------------------- VAD


class VoiceActivity(nn.Module):
    """Imitates Silero VAD v5: inputs ``input`` float32 [batch, samples] (an audio chunk in -1..1; Silero
    takes 512 samples at 16 kHz or 256 at 8 kHz; here any length >= 16 works, >= 64 in the .pt2), ``state`` float32
    [2, batch, 128] (LSTM h and c; zeros at the start of a stream; the batch is axis 1) and ``sr`` int64
    scalar [] which must be 8000 or 16000. Outputs ``output`` [batch, 1] (speech probability) and ``stateN``
    [2, batch, 128] (the state to feed with the next chunk).

    Like Silero, which holds a 16 kHz and an 8 kHz branch and picks one by sr, both branches run and sr picks
    one through a Gather from a 2-row table; any other sr gives an out-of-range index: ONNX Runtime and torch
    raise, OpenVINO (whose Gather yields zeros out of range) returns a constant, meaningless probability."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()

        def encoder(k: int, s: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(1, 64, k, s), nn.ReLU(), nn.Conv1d(64, hidden, 3, 2, 1), nn.ReLU(),
                                 nn.Conv1d(hidden, hidden, 3, 2, 1), nn.ReLU())

        self.enc8k, self.enc16k = encoder(8, 4), encoder(16, 8)
        self.rnn = nn.LSTM(hidden, hidden)
        self.decoder = nn.Linear(hidden, 1)
        self.register_buffer("pick", torch.eye(2), persistent=False)

    def forward(self, input: torch.Tensor, state: torch.Tensor, sr: torch.Tensor) -> tuple[torch.Tensor, ...]:
        not8k, not16k = (sr != 8000).long(), (sr != 16000).long()
        index = not8k + 2 * not8k * not16k  # 0 for 8 kHz, 1 for 16 kHz, 3 (out of range) otherwise
        weight = self.pick[index]  # [2]
        x = input.unsqueeze(1)
        feat = weight[0] * self.enc8k(x).mean(2) + weight[1] * self.enc16k(x).mean(2)  # [b, hidden]
        y, (h, c) = self.rnn(feat.unsqueeze(0), (state[0:1], state[1:2]))
        prob = torch.sigmoid(self.decoder(F.relu(y[0])))
        return prob, torch.cat((h, c), 0)


# ------------------------------------------------------------------------------------------- text encoder


class BertLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-12), nn.LayerNorm(dim, eps=1e-12)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads) + bias, dim=-1)
        x = self.norm1(x + self.out((att @ v).transpose(1, 2).reshape(b, n, d)))  # post-norm, as BERT
        return self.norm2(x + self.ff(x))


class TextEncoder(nn.Module):
    """Imitates a BERT-style encoder exported by Hugging Face Optimum (2 layers, hidden 128, 4 heads).

    Inputs, all int64 [batch, sequence]: ``input_ids`` in 0..VOCAB-1 (VOCAB = 1000; 0 is padding, 101/102 play
    [CLS]/[SEP]), ``attention_mask`` 1 for tokens and 0 for padding, ``token_type_ids`` 0 or 1 (segment).
    sequence is free up to 512 (the position table). Outputs ``last_hidden_state`` [batch, sequence, 128] and
    ``pooler_output`` [batch, 128]. An id >= 1000 makes ONNX Runtime raise (Gather out of range)."""

    VOCAB, MAX_POSITIONS, TYPES = 1000, 512, 2

    def __init__(self, dim: int = 128, heads: int = 4, ff: int = 512, layers: int = 2) -> None:
        super().__init__()
        self.word = nn.Embedding(self.VOCAB, dim, padding_idx=0)
        self.position = nn.Embedding(self.MAX_POSITIONS, dim)
        self.token_type = nn.Embedding(self.TYPES, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(dim, heads, ff) for _ in range(layers))
        self.pooler = nn.Linear(dim, dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1], dtype=torch.int64).unsqueeze(0)
        x = self.norm(self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids))
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        return x, torch.tanh(self.pooler(x[:, 0]))


# -------------------------------------------------------------------------------------------- masked pool


class MaskedPool(nn.Module):
    """Imitates the pooling and projection head of a sentence-embedding model (sentence-transformers' mean
    pooling + dense + normalise), run on token features: inputs ``features`` float32 [batch, tokens, 64] and
    ``mask`` bool [batch, tokens] (True for real tokens; a row of all False gives a zero embedding).
    Output ``embedding`` float32 [batch, 32], L2-normalised."""

    def __init__(self, dim: int = 64, out: int = 32) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
        self.proj = nn.Linear(dim, out)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(features.dtype)
        pooled = (self.pre(features) * m).sum(1) / m.sum(1).clamp(min=1.0)
        return F.normalize(self.proj(pooled), dim=-1)


# ------------------------------------------------------------------------------------------------- panel


def _init(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build and initialise under one seed (LSTM and Embedding weights are drawn in their constructors)."""
    torch.manual_seed(seed)
    module = make()
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics, so BN folding is exercised
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return module.eval()


Feeds = dict[str, torch.Tensor]


def _detector_feeds(batch: int, size: int) -> Feeds:
    h, w = ((320, 320), (256, 384))[size]
    return {"images": torch.rand(batch, 3, h, w)}


def _ocr_rec_feeds(batch: int, size: int) -> Feeds:
    return {"x": torch.rand(batch, 3, 48, (320, 160)[size]) * 2 - 1}


def _ocr_det_feeds(batch: int, size: int) -> Feeds:
    h, w = ((320, 320), (256, 448))[size]
    return {"x": torch.rand(batch, 3, h, w) * 2 - 1}


def _vad_feeds(batch: int, size: int) -> Feeds:
    samples, sr = ((512, 16000), (256, 8000))[size]
    return {"input": torch.rand(batch, samples) * 2 - 1, "state": torch.zeros(2, batch, 128),
            "sr": torch.tensor(sr, dtype=torch.int64)}


def _text_feeds(batch: int, size: int) -> Feeds:
    n = (64, 17)[size]
    g = torch.Generator().manual_seed(batch * 100 + n)
    ids = torch.randint(1, TextEncoder.VOCAB, (batch, n), generator=g)
    mask = torch.ones(batch, n, dtype=torch.int64)
    mask[0, n - n // 4:] = 0  # padding at the end of the first row
    types = torch.zeros(batch, n, dtype=torch.int64)
    types[:, n // 2:] = 1
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": types}


def _pool_feeds(batch: int, size: int) -> Feeds:
    t = (50, 7)[size]
    mask = torch.ones(batch, t, dtype=torch.bool)
    mask[0, t // 2:] = False
    return {"features": torch.randn(batch, t, 64), "mask": mask}


@dataclass(frozen=True)
class PanelModel:
    """How to build, export and feed one panel model. ``axes`` names the dynamic axes of every input and
    output (ONNX dim_param names); ``feeds(batch, size)`` gives example inputs, size 0 or 1 picking two
    different values for the non-batch dynamic dims. ``multiple_of`` and ``bounds`` (min, max) constrain those
    dims for torch.export; ``no_pt2`` says why a model has no .pt2 twin."""

    factory: Callable[[], nn.Module]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    axes: dict[str, dict[int, str]]
    feeds: Callable[[int, int], Feeds]
    multiple_of: dict[str, int] = field(default_factory=dict)
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    no_pt2: str = ""


def _p2o(i: int) -> str:
    return f"p2o.DynamicDimension.{i}"


_BATCH = (1, 1024)

PANEL: dict[str, PanelModel] = {
    "detector": PanelModel(
        lambda: _init(Detector, 10), ("images",), ("boxes", "scores"),
        {"images": {0: "batch", 2: "height", 3: "width"}, "boxes": {0: "batch", 1: "anchors"},
         "scores": {0: "batch", 1: "anchors"}},
        _detector_feeds, multiple_of={"height": 32, "width": 32}),
    "ocr_rec": PanelModel(
        lambda: _init(OcrRecognizer, 11), ("x",), ("softmax",),
        {"x": {0: "batch", 3: "width"}, "softmax": {0: "batch", 1: "steps"}},
        _ocr_rec_feeds,
        no_pt2="torch.export unrolls the LSTM over time steps, which specialises width to the example's value"),
    "ocr_det": PanelModel(
        lambda: _init(OcrDetector, 12), ("x",), ("sigmoid_0.tmp_0",),
        {"x": {0: _p2o(0), 2: _p2o(1), 3: _p2o(2)}, "sigmoid_0.tmp_0": {0: _p2o(3), 2: _p2o(4), 3: _p2o(5)}},
        _ocr_det_feeds, multiple_of={_p2o(1): 32, _p2o(2): 32}, bounds={_p2o(0): _BATCH}),
    "vad": PanelModel(
        lambda: _init(VoiceActivity, 13), ("input", "state", "sr"), ("output", "stateN"),
        {"input": {0: "batch", 1: "samples"}, "state": {1: "batch"}, "output": {0: "batch"},
         "stateN": {1: "batch"}},
        _vad_feeds, bounds={"samples": (64, 16000)}),
    "text_encoder": PanelModel(
        lambda: _init(TextEncoder, 14), ("input_ids", "attention_mask", "token_type_ids"),
        ("last_hidden_state", "pooler_output"),
        {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
         "token_type_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"},
         "pooler_output": {0: "batch"}},
        _text_feeds, bounds={"sequence": (2, TextEncoder.MAX_POSITIONS)}),
    "masked_pool": PanelModel(
        lambda: _init(MaskedPool, 15), ("features", "mask"), ("embedding",),
        {"features": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
        _pool_feeds),
}

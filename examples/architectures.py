"""Small but real architectures for the examples: a ResNet-style and a MobileNet-style CNN at 224x224,
and a small transformer encoder. Written here (no torchvision) and initialised deterministically."""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True) if groups > 1 or k == 1 else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, act=False))
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else _conv_bn(cin, cout, 1, stride, act=False))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResNetS(nn.Module):
    """ResNet-style: 7x7 stem, four stages of basic blocks (32..256 channels), global pool, 1000 classes."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 1, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, widths[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                stages.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_skip = stride == 1 and cin == cout
        self.body = nn.Sequential(_conv_bn(cin, hidden, 1), _conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  _conv_bn(hidden, cout, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_skip else y


class MobileNetS(nn.Module):
    """MobileNetV2-style at width 0.5: depthwise-separable inverted residual blocks."""

    # (expand, channels, repeats, stride)
    SETTINGS = ((1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 3, 2), (6, 32, 4, 2), (6, 48, 3, 1), (6, 80, 3, 2),
                (6, 160, 1, 1))

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, 16, 3, 2)]
        cin = 16
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn(cin, 640, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(640, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, n, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class TinyEncoder(nn.Module):
    """A pre-norm transformer encoder over token ids (vocabulary 1000, 64 tokens) with a 4-way head."""

    def __init__(self, vocab: int = 1000, seq: int = 64, dim: int = 128, heads: int = 4, ff: int = 512,
                 layers: int = 2, classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, seq, dim) * 0.02)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads, ff) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.embed(ids) + self.pos)
        return self.head(self.norm(x).mean(dim=1))


class DigitsCNN(nn.Module):
    """A small CNN for scikit-learn's digits upscaled to 32x32: four conv-BN-ReLU layers (32..128 channels,
    two stride-2), global pool, 10 classes. Trained by train_digits.py."""

    def __init__(self, widths: tuple[int, int, int, int] = (32, 64, 64, 128)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.features = nn.Sequential(_conv_bn(1, a, 3), _conv_bn(a, b, 3, 2), _conv_bn(b, c, 3),
                                      _conv_bn(c, d, 3, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _init(module: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module.eval()


def resnet_s() -> nn.Module:
    return _init(ResNetS(), 0)


def mobilenet_s() -> nn.Module:
    return _init(MobileNetS(), 1)


def tiny_encoder() -> nn.Module:
    return _init(TinyEncoder(), 2)


# name -> (factory, input name, example shape at batch 1, dtype)
MODELS = {
    "resnet_s": (resnet_s, "image", (1, 3, 224, 224), torch.float32),
    "mobilenet_s": (mobilenet_s, "image", (1, 3, 224, 224), torch.float32),
    "tiny_encoder": (tiny_encoder, "ids", (1, 64), torch.int64),
}

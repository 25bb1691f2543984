"""The roofline's micro-benchmark kernels as PyTorch factories (a GEMM and a streaming add), for runtimes that
load PyTorch models; their sizes come from the input shapes. Imported only inside a torch trial process."""

from __future__ import annotations

import torch


class Gemm(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class Stream(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0

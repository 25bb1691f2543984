"""inferlab: measure, compare and tune deep-learning inference."""

from inferlab.api import Run, benchmark, run
from inferlab.errors import InferlabError

__version__ = "0.1.0"
__all__ = ["InferlabError", "Run", "__version__", "benchmark", "run"]

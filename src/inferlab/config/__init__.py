"""What the user asks for: the pydantic schema, YAML loading, and expansion into trials."""

from inferlab.config.loader import load, load_text
from inferlab.config.plan import Plan, plan
from inferlab.config.schema import Experiment

__all__ = ["Experiment", "Plan", "load", "load_text", "plan"]

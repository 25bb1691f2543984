"""Derived artifacts: FP16, INT8 and accuracy-aware INT8, each with its lineage."""

"""Commands: parse, call the API, render. Nothing else."""

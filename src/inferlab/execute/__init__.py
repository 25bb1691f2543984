"""Running trials: the runner (one trial in a child process) and the local executor that spawns it."""

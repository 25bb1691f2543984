"""Search over knobs under constraints: the space, the optuna loop, objectives, and the winner."""

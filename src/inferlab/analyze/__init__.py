"""Model analysis: complexity (FLOPs, parameters, memory), per-layer profiles, the roofline, the graph view."""

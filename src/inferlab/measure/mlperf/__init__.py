"""MLPerf Inference's scenarios, run through the real LoadGen (mlcommons-loadgen)."""

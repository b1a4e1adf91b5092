"""Cost: what a suite will take (reference timings and the cost formula, their cache, the schedule), estimated from the run plan."""

"""Cost: what a suite will take (calibration, its cache, the schedule), estimated from the run plan."""

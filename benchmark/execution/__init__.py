"""Execution: the suite, the frozen run plan, the group state machine, the run loop, executors, worker pool, the worker, tuning and progress."""

"""The ``curate`` command and its orchestration: stages, executors, runs, filter, report, query."""

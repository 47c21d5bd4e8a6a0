"""The ``curate`` command and its orchestration: config, model registry, stages, executors, runs."""

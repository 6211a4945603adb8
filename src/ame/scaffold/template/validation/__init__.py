"""The validation task: its exit code decides whether a version is promoted."""

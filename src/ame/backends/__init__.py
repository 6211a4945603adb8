"""Where deployments run. ``local`` (detached server processes) is the default backend.

Import-light: the CLI imports this package at start-up.
"""

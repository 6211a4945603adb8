"""Training-only code: never shipped to the serving environment."""

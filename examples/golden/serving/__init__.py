"""Serving-only code: what the deployed model runs around the shared pipeline."""

"""Shared helpers for the integration and e2e tests (no network, no Docker Hub)."""

"""Operator input (options, the credentials secret, TLS material) -> typed, validated values."""

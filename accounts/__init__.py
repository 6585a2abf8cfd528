"""Signing in, users and their API tokens."""

"""Plumbing every app may use and that knows no app: the egress guard, parsers, converters,
database functions, the error shape. It imports no other app of the project."""

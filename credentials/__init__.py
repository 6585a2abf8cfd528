"""Credentials: secrets connections authenticate with, and where each secret may be sent.

Owns the model (encrypted at rest, never read back), the validation of secrets (kubeconfigs
parsed with bounds), the endpoint bounds every sender checks (``bounds``), the scrubbing of
secrets from every stored or shown text (``scrub``), and the credential pages, admin and API.
Depends on nothing of ``connections``; ``connections`` uses its public functions.
"""

"""Fixtures of the sandbox's own tests: the Kubernetes fake with a client on it."""

from tests.sandbox.kube_fake_env import env, upstream

__all__ = ["env", "upstream"]

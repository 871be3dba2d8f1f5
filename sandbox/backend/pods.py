"""Names of the backend's pods, shared by the log generator, the WORM shards and the
Kubernetes fake (which must list exactly these pods)."""

from __future__ import annotations

import random

from sandbox.world.spec import World

# The alphabet Kubernetes uses for generated name parts (no vowels, no look-alikes).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def backend_pod_names(world: World) -> list[str]:
    """``<deployment>-<pod-template-hash>-<5 chars>`` for each of ``world.backend.pods``.

    Stable for a seed; the same names ``sandbox.kube.world_objects.pod_names`` derives.
    """
    rng = random.Random(f"{world.seed}:{world.backend.deployment}")

    def generated(length: int) -> str:
        return "".join(rng.choice(_ALPHABET) for _ in range(length))

    template_hash = generated(10)
    return [f"{world.backend.deployment}-{template_hash}-{generated(5)}" for _ in range(world.backend.pods)]

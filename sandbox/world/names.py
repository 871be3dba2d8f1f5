"""Tenant names for generated worlds: plain words, words with digits or dashes, names that start
with a digit, and siblings that share a prefix with another tenant (``acme`` / ``acme2``), which
is what catches a ``grep tenant_id=acme`` that also matches ``acme2``."""

from __future__ import annotations

import random
import re

from sandbox.world.spec import TENANT_ID_PATTERN

WORDS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "oscorp",
    "wonka",
    "soylent",
    "nakatomi",
    "aperture",
    "contoso",
    "fabrikam",
    "tailspin",
    "litware",
    "adatum",
    "woodgrove",
    "orbit",
    "zephyr",
    "halcyon",
    "tundra",
    "meridian",
    "kestrel",
    "lumen",
    "nimbus",
    "quasar",
    "vertex",
    "polaris",
    "cobalt",
    "ember",
    "fjord",
    "granite",
    "harbor",
    "juniper",
    "krypton",
    "lattice",
    "mosaic",
    "nova",
    "onyx",
    "pylon",
    "quill",
    "raven",
    "sierra",
    "talon",
    "vortex",
    "willow",
    "xenon",
    "zenith",
    "atlas",
    "beacon",
    "cascade",
    "delta",
    "echo",
    "falcon",
    "gamma",
    "helix",
    "iris",
    "jade",
    "kappa",
    "lynx",
    "magma",
    "nexus",
    "opal",
    "prism",
    "quartz",
    "rhino",
    "sable",
    "tesla",
    "umber",
    "vega",
    "wren",
    "yarrow",
    "zinc",
    "alder",
    "birch",
    "cedar",
    "dune",
    "ferro",
    "gale",
    "heron",
    "ibis",
)
SUFFIXES = ("2", "3", "-eu", "-us", "-staging", "-prod", "x", "-1", "-labs", "9")
_VALID = re.compile(TENANT_ID_PATTERN)


def _fresh(rng: random.Random) -> str:
    word = rng.choice(WORDS)
    shape = rng.random()
    if shape < 0.5:
        return word
    if shape < 0.7:
        return f"{word}{rng.choice(('', '-'))}{rng.randint(1, 99)}"
    if shape < 0.88:
        return f"{word}-{rng.choice(WORDS)}"
    return f"{rng.randint(1, 99)}{rng.choice(('', '-'))}{word}"


def tenant_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct valid tenant ids; about half the worlds hold a prefix-sharing pair."""
    names: list[str] = []
    want_sibling = rng.random() < 0.5
    while len(names) < count:
        sibling = bool(names) and (want_sibling or rng.random() < 0.15)
        name = rng.choice(names) + rng.choice(SUFFIXES) if sibling else _fresh(rng)
        if len(name) <= 40 and _VALID.match(name) and name not in names:
            names.append(name)
            want_sibling = want_sibling and not sibling
    return names

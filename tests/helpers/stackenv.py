"""Where the reference stack lives and how to reach it: devtools/stackenv.py (bench/ uses it too)."""
from devtools.stackenv import *  # noqa: F403

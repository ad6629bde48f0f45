"""cutover: a terminal console for running a staged traffic cutover by hand, safely."""

__version__ = "0.1.0"

"""socialav: who speaks, who talks to me, who looks at me — frame by frame, on any video."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("socialav")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""The package version, in a module of its own so that code deep in the package can name it without
importing the root namespace (which sits above everything)."""

__version__ = "0.1.0"

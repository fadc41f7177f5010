"""postern: emergent-misalignment experiments from data to figure."""

__version__ = "0.1.0"

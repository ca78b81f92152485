"""The DVC stages, one module each, run as ``python -m flightdelay.stages.<verb>``."""

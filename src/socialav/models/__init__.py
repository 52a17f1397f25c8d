"""Architectures only (and their registry): no optimiser, no device choice, no file I/O.
Loading weights into them is :mod:`socialav.checkpoints`."""

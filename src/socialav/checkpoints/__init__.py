"""From a weights name or file to a model: the self-describing socialav checkpoint format, the
key maps of the reference checkpoints, and :func:`~socialav.checkpoints.load.load_pretrained`."""

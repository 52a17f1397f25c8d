"""What each kind of model learns from: the ASD task and the Ego4D tasks, run by
:mod:`socialav.training.engine`."""

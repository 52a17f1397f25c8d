"""Ego4D social benchmarks (Talking-to-Me, Looking-at-Me, active speaker): annotations,
training samples, media in the baselines' layout, the course format and the ASD conversion."""

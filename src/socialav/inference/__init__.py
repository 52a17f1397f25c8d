"""Scoring face tracks: ASD windows and backends, scene context, LAM/TTM scorers, speaking
segments. Models come in loaded (:mod:`socialav.checkpoints`); nothing here trains."""

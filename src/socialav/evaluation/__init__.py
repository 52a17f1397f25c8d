"""socialav.evaluation"""

"""socialav.training"""

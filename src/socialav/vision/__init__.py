"""socialav.vision"""

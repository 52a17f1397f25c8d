"""socialav.io"""

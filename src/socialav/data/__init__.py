"""socialav.data"""

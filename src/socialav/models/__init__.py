"""socialav.models"""

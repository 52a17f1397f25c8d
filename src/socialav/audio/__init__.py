"""socialav.audio"""

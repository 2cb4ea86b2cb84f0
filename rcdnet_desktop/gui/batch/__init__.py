"""Batch review of a folder.
"""

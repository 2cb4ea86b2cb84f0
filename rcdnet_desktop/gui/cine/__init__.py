"""Cine clips: the sweep that classifies every frame, and the timeline drawn under the frame slider.
"""

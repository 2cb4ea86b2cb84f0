"""What the viewer holds and runs, without widgets: the open documents, the engine, the background
workers and their messages, the image list's order.
"""

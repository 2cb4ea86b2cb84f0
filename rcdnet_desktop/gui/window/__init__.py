"""The main window: its controller and the protocols around it, its actions and menus, and what it
shows.
"""

"""PACS: the nodes kept, query/retrieve, sending a result, and the jobs that do the networking off
the GUI thread.
"""

"""The Help dialogs (About, Model card, Keyboard shortcuts), the export dialog and the stored-result
window.
"""

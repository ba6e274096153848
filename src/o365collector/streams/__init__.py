"""What can be collected: message trace and every Exchange report, declared once.

The catalog is the bottom of the package graph: configuration, sources, sinks (Devo
tables) and planning read it; it imports nothing of the product.
"""

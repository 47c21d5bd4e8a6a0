"""The bottom layer: typed configuration (``config.py``) and the model registry (``models.py``).

Every other package may import it; it imports nothing of the project.
"""

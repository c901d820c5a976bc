"""npflow: flow matching from scratch in NumPy."""
__version__ = "0.1.0"

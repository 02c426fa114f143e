"""ezrobot: EfficientZero for sample-efficient visual control."""
__version__ = "0.1.0"

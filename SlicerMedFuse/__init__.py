"""SlicerMedFuse backend: multi-modal medical image analysis behind 3D Slicer's MedFuse panels."""
__version__ = "0.1.0"

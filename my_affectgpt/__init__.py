"""AU Agent for AffectGPT: OpenFace AUs -> descriptions -> text features -> AffectGPT."""
__version__ = "0.1.0"

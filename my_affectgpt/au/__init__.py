"""Facial Action Units: OpenFace reading, FACS knowledge, frame sampling, teachers, simulation."""

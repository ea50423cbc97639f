"""Shared plumbing: errors, atomic files, configuration."""

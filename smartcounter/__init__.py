"""Composition root: configuration, CLI and wiring of the application."""

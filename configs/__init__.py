"""Hydra YAML configs, shipped as package data."""

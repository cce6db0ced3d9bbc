"""Implementations of the ports: one sub-package per port family, real and embedded."""

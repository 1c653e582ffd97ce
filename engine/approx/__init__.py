"""Nonlinear functions on shares; see the modules for domains, error bounds and costs."""

"""Pieces shared by several algorithms: returns, networks, distributions, value norm."""

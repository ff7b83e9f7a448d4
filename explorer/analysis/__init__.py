"""Analyses over the PrototypeModel contract: pure functions returning plain data."""

"""Synthetic amodal video and dataset readers."""

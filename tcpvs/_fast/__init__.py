"""Cython twins of hot pure-Python modules; each is chosen by the package it speeds up."""

"""Measuring the matcher: verification protocols, calibration, the demographic audit.

Pure functions over scores and labels return frozen results; plots and reports live in
their own modules. Evaluation imports vision, store and governance, never the reverse.
"""

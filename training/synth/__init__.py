"""Synthetic licence-plate renderer: text patterns (text.py), plate drawing (render.py) and the camera-like
degradations (augment.py). Everything takes an explicit numpy Generator so a seed reproduces the data."""

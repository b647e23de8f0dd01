"""Readers for the real public data layouts (IJB-B/C, CelebA, LFW, image folders) and the
SynthFaces generator that writes the same layouts."""

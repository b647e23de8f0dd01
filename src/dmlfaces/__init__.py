"""dmlfaces: a reproducible study of set-based face verification and of the attributes inside
identity embeddings, with its own procedural face benchmark (SynthFaces) in the real data layouts."""

__version__ = "0.1.0"

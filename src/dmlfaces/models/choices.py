"""The names of the model variants a config may choose, torch-free: a config is checked without loading torch.

The modules that build the models (``models.coreset``, ``models.aggregators``) read them from here.
"""

PICK_LOGITS = ("log_distance", "distance")  # picks 2..K of the coreset (models.coreset)
FIRST_PICKS = ("argmax", "sample")  # its first pick
NORM_ENCODINGS = ("sin_cos_halves", "interleaved_2pi")  # the norm's positional encoding (models.aggregators)
ATTENTION_LAYERS = ("ours", "official")  # the attention block (models.aggregators)

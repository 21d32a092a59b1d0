"""Synthetic COCO-format pose data (:mod:`.synthetic_scene`, :mod:`.synthetic_coco`)."""

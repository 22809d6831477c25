"""Metadata quality: the MQA-style score of every product (score.py, pure)
and the link checker of resource URLs whose results count in it."""

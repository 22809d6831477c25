"""The search index, in bulk: dictize and index batches, rebuild the whole
index in place, and check (and repair) it against the database."""

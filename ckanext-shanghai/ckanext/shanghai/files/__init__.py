"""Untrusted files in: streaming readers of JSON, CSV and Excel with their
size and nesting caps, and the guarded downloader (timeouts, size caps, no
private addresses). Used by the harvesters and the DataStore loader."""

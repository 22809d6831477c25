"""Real-time data products: keyed DataStore tables fed by push, with their
history, time travel, liveness and a live stream."""

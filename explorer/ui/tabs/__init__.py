"""One builder per tab; each takes the Explorer and the shared state components."""

"""The incident timeline: typed events (``events``), rendered only at the edges."""

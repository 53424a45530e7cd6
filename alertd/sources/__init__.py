"""I/O edge: one module per source, each a pure decoder plus an async run() that owns the socket."""

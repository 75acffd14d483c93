"""Redis storage: connection, key formats, streams, repositories."""

"""oceanbridge coupling layer: components, partitions, transports and the worker runtime."""

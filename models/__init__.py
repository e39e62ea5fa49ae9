"""oceanbridge ML: diffusion surrogates, buffers, metrics. Never imports ``bridge``."""

"""Transports: the same component/field API over plain MPI or OASIS3-MCT."""

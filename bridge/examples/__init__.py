"""Python sides of the Fortran examples in bridge/fortran/examples (they double as tests)."""

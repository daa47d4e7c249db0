"""The ``cauce`` command line: a thin shell over the SDK, one module per command group."""

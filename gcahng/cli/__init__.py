"""Command-line interface: ``gcahng <command>``. Commands are imported only when run."""

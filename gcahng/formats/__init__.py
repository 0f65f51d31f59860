"""The files gcahng writes and reads, one module per format, each with its one reader and writer."""

"""``python -m gcahng`` (and ``torchrun -m gcahng``): the same as the ``gcahng`` command."""
from gcahng.cli.main import main

if __name__ == "__main__":
    main()

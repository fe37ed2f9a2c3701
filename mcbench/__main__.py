"""`python -m mcbench`: the same as the `mcbench` command."""

from mcbench.cli import main

if __name__ == "__main__":
    main()

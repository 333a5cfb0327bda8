"""`python -m goodeye.cli`."""

from goodeye.cli import main

main()

"""`python -m my_affectgpt.models.au_agent extract|plot` (the command line is in cli.py)."""
import sys

from my_affectgpt.models.au_agent.cli import main

sys.exit(main())

"""`python -m my_affectgpt.training.au_sft` (the command line is in cli.py)."""
import sys

from my_affectgpt.training.au_sft.cli import main

sys.exit(main())

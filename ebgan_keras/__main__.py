"""`python -m ebgan_keras` runs the command line."""

import sys

from ebgan_keras.cli import main

sys.exit(main())

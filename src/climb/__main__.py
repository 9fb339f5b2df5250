import sys

from climb.cli import main

sys.exit(main())

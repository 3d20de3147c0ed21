import sys

from loong_env.cli import main

sys.exit(main())

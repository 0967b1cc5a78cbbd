import sys

from bulkcall_core.cli import main

sys.exit(main())

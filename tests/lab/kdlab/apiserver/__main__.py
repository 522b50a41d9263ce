import sys

from kdlab.apiserver.main import main

sys.exit(main())

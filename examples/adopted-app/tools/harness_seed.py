"""harness's seed command for the shop: maps harness's seed environment onto the app's own seed.

harness runs this with the staged src/ and vendor/ on PYTHONPATH (docs/config.md), so it imports the
packaged code, not the working tree's.
"""

import os
import sys

from shop.seed import main

sys.exit(main(["--db", os.environ["HARNESS_DB_PATH"], "--state", os.environ["HARNESS_STATE_FILE"],
               "--target", os.environ["HARNESS_TARGET"]]))

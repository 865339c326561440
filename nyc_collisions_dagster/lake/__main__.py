import sys

from nyc_collisions_dagster.lake.query import main

sys.exit(main())

"""The one :class:`sqlalchemy.MetaData` every table module registers its tables on.

Table modules import it from here (never from each other); :mod:`engine.db.schema` imports every table module,
so its ``metadata`` holds the whole schema.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

"""geoapp: the environmental one-map (一张图) of a city ecology and environment bureau.

Nothing happens at import time but one pandas option; build the web app with
:func:`geoapp.web.create_app`.
"""

import pandas as _pd

__version__ = "0.1.0"

# pandas stores its text columns in Arrow when pyarrow is installed (it is: the batch flag
# reads and writes through Arrow). Every frame of the app is judged, neutralised and
# exported as Python text, so text columns stay Python strings; Arrow is used explicitly
# where it pays (services.flagparts, services.flagout).
_pd.set_option("mode.string_storage", "python")

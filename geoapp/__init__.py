"""geoapp: the environmental one-map (一张图) of a city ecology and environment bureau.

Nothing happens at import time; build the web app with :func:`geoapp.web.create_app`.
"""

__version__ = "0.1.0"

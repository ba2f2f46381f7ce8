"""City Bookcase (城市书柜) kiosk daemon."""

__version__ = "0.1.0"

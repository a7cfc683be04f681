"""The agency portal: agencies answer their referrals and submit reports; the office oversees."""

from portal.app import create_app

__all__ = ["create_app"]

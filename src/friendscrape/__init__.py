"""friendscrape: collect who each user follows, for millions of users, one partition per worker."""

__version__ = "0.1.0"

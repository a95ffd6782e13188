"""des-tf test suite (a package so rank bodies can be imported by tests.rank_main)."""

"""Pure domain logic: no files, no tracking, no network."""

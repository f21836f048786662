"""Pure rules of the Chinese standards, as data and small functions. No I/O here."""
